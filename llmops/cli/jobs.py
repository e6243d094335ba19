"""`llmops jobs list|show|cancel`: retraining jobs launched by alert rules and `llmops loop`."""

from __future__ import annotations

import argparse
import json


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("jobs", help="retraining jobs: list, show (with log tail), cancel",
                              description="Jobs run each retraining as its own process (or a scheduler "
                              "submission); states queued -> running -> succeeded | failed | cancelled.")
    sub = p.add_subparsers(dest="jobs_command", metavar="SUBCOMMAND", required=True)
    ls = sub.add_parser("list", help="newest jobs first")
    ls.add_argument("--status", choices=["queued", "running", "succeeded", "failed", "cancelled"])
    ls.add_argument("--limit", type=int, default=50)
    ls.add_argument("--after", metavar="CURSOR", help="the page after this cursor (printed on stderr when more exist)")
    show = sub.add_parser("show", help="one job with its log tail")
    show.add_argument("job_id")
    cancel = sub.add_parser("cancel", help="stop a queued or running job (terminates its process group)")
    cancel.add_argument("job_id")
    for q in (ls, show, cancel):
        q.add_argument("--db", metavar="URL")
        q.add_argument("--json", action="store_true")
    ls.set_defaults(func=cmd_list)
    show.set_defaults(func=cmd_show)
    cancel.set_defaults(func=cmd_cancel)


def _store(args: argparse.Namespace):
    from llmops.monitor.jobs import JobStore

    store = JobStore(args.db)
    store.poll()  # a job that ended since anyone last looked shows its real state
    return store


def cmd_list(args: argparse.Namespace) -> int:
    import sys

    from llmops.monitor.jobs import job_cursor

    jobs = _store(args).list(status=args.status, limit=args.limit, before=args.after)
    if len(jobs) == args.limit:
        print(f"more: --after '{job_cursor(jobs[-1])}'", file=sys.stderr)
    if args.json:
        print(json.dumps(jobs, indent=2))
        return 0
    for j in jobs:
        print(f"{j['id']}  {j['status']:<10} attempt {j['attempt']}/{j['max_attempts']}  {j['launcher']:<10} "
              f"model {j['model'] or '-':<20} incident {j['incident_id'] or '-':<5} created {j['created_at'][:19]}")
    if not jobs:
        print("(no jobs)")
    return 0


def _print_job(j: dict) -> None:
    for key in ("id", "status", "attempt", "max_attempts", "launcher", "model", "incident_id", "run_dir", "pid",
                "host", "exit_code", "created_at", "started_at", "finished_at", "next_try_at", "log_path"):
        print(f"{key:<13} {j[key]}")
    print(f"{'argv':<13} {' '.join(j['argv'])}")
    if j["log_tail"]:
        print("--- log tail ---")
        print(j["log_tail"])


def cmd_show(args: argparse.Namespace) -> int:
    job = _store(args).get(args.job_id)
    print(json.dumps(job, indent=2)) if args.json else _print_job(job)
    return 0


def cmd_cancel(args: argparse.Namespace) -> int:
    job = _store(args).cancel(args.job_id)
    print(json.dumps(job, indent=2)) if args.json else print(f"{job['id']}: {job['status']}")
    return 0

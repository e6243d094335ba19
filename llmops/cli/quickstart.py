"""`llmops quickstart [--out DIR] [--db URL] [--fast]`: the closed loop end to end, with a report."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "quickstart",
        help="train, evaluate, register, serve, collect (simulated) feedback, learn from it, promote if better, report",
        description="Run the whole loop on the built-in model: SFT -> eval vs base -> register v1 -> gates -> "
        "serve -> SIMULATED raters over HTTP -> export -> reward model -> v2 from the feedback (rejection-sampling "
        "fine-tuning or DPO) -> eval v2 vs v1 -> gates -> "
        "promote only if better -> drift and quality checks. Writes DIR/report.html and DIR/summary.json. "
        "Re-running with the same DIR skips finished stages.",
    )
    p.add_argument("--out", default="runs/quickstart", help="output directory (default: runs/quickstart)")
    p.add_argument("--db", default=None,
                   help="database URL (default: SQLite in DIR, with the registry artifacts in DIR/registry)")
    p.add_argument("--fast", action="store_true", help="tiny step and sample counts (a smoke test, ~minutes)")
    p.add_argument("--seed", type=int, default=None, help="seed of every stage (default: the profile's, 42)")
    p.add_argument("--improve", default=None,
                   choices=["rft", "dpo", "iterative_dpo", "iterative_rft", "dpo_corrections", "sft_control"],
                   help="how v2 learns from the feedback (default: the profile's, dpo); iterative_*: K rounds of "
                        "sampling the current policy, judging and training; dpo_corrections: DPO + NLL on the "
                        "rated pairs and the raters' corrections; sft_control: NO feedback, v1 continued with SFT "
                        "on its own data (the control a feedback method must beat; docs/preference.md)")
    p.add_argument("--set", dest="settings", action="append", default=[], metavar="KEY=VALUE",
                   help="override one quickstart setting (llmops/loop/settings.py), e.g. --set iter_rounds=2; "
                        "repeatable")
    p.add_argument("--fork-from", default=None, metavar="DIR",
                   help="copy the finished run in DIR (database, registry, stages up to the reward model) into "
                        "--out and redo only v2 onwards with these settings: another way to learn from the same "
                        "feedback without repeating SFT, traffic and raters")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import json

    from llmops.loop.quickstart import run_quickstart
    from llmops.loop.settings import parse_overrides

    overrides = parse_overrides(args.settings)
    overrides.update({k: v for k, v in (("seed", args.seed), ("improve", args.improve)) if v is not None})
    if args.fork_from:
        from dataclasses import replace
        from pathlib import Path

        from llmops.errors import UserError
        from llmops.loop.fork import fork
        from llmops.loop.settings import profile

        if args.db:
            raise UserError("--fork-from copies the run's own SQLite database; it cannot be combined with --db")
        fork(Path(args.fork_from), Path(args.out), replace(profile(args.fast), **overrides))
    facts = run_quickstart(args.out, fast=args.fast, db_url=args.db, **overrides)
    v2 = facts["promote_v2"]
    print(json.dumps({"report": facts["report"]["html"], "summary": facts["report"]["json"],
                      "production": f"{facts['settings']['name']}/{facts['registry']['production']}",
                      "v2_promoted": v2.get("promoted"), "why": v2.get("why"),
                      "seconds": round(sum(t["seconds"] for t in facts["timings"]), 1)}, indent=2))
    import sys

    ui = facts["ui"]
    print(f"\nBrowse the results in the web UI (log in with the printed key):\n  {ui['key']}\n  {ui['ui']}\n"
          "  then open http://127.0.0.1:8090/", file=sys.stderr)
    return 0

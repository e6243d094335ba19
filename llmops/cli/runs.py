"""`llmops runs scan|list`: the index of training run folders (what `llmops ui` lists)."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("runs", help="index training run folders and list them with filters",
                              description="The runs index in the project database: filled by training and by "
                                          "`llmops runs scan`; `llmops ui` lists the same rows.")
    sub = p.add_subparsers(dest="runs_command", metavar="ACTION", required=True)
    db_help = "database URL (default: $LLMOPS_DATABASE_URL, else SQLite at $LLMOPS_HOME/llmops.db)"
    s = sub.add_parser("scan", help="index (idempotently) every run folder under DIR")
    s.add_argument("dirs", nargs="+", metavar="DIR")
    s.add_argument("--db", help=db_help)
    s.add_argument("--no-prune", action="store_true", help="keep rows of folders that are gone")
    s.set_defaults(func=scan)
    ls = sub.add_parser("list", help="indexed runs, newest first")
    for name in ("recipe", "task", "status", "tag"):
        ls.add_argument(f"--{name}")
    ls.add_argument("-q", help="substring of the folder name or run id")
    ls.add_argument("--page", type=int, default=1)
    ls.add_argument("--per-page", type=int, default=50)
    ls.add_argument("--json", action="store_true", help="one JSON object per run")
    ls.add_argument("--db", help=db_help)
    ls.set_defaults(func=list_cmd)


def scan(args: argparse.Namespace) -> int:
    from pathlib import Path

    from llmops.errors import UserError
    from llmops.train.runs_index import scan_runs

    for d in args.dirs:
        if not Path(d).is_dir():
            raise UserError(f"{d!r} is not a directory")
    r = scan_runs(args.dirs, args.db, prune=not args.no_prune)
    print(f"{r.indexed} indexed, {r.unchanged} unchanged, {r.pruned} pruned, {len(r.skipped)} unreadable")
    for line in r.skipped:
        print(f"  unreadable: {line}")
    return 0


def list_cmd(args: argparse.Namespace) -> int:
    import json
    from dataclasses import asdict

    from llmops.errors import UserError
    from llmops.train.runs_index import list_runs

    try:
        page = list_runs(args.db, recipe=args.recipe, task=args.task, status=args.status, tag=args.tag, q=args.q,
                         page=args.page, per_page=args.per_page)
    except ValueError as exc:
        raise UserError(str(exc)) from exc
    for r in page.runs:
        if args.json:
            print(json.dumps(asdict(r), default=str))
        else:
            loss = "—" if r.train_loss is None else f"{r.train_loss:.4g}"
            print(f"{r.id:6} {r.status:10} {r.task:7} {r.recipe:20} loss {loss:8} {r.name}")
    if not args.json:
        print(f"page {page.page} of {page.pages} ({page.total} runs)")
    return 0

"""`llmops resources path|copy`: where the shipped recipes, suites and rater page are, and a copy to edit."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "resources",
        help="the recipes, evaluation suites and rater page shipped in the package",
        description="Files shipped inside the package (recipes/, eval/, feedback/). Commands that take a "
        "relative recipes/… or eval/… path read the shipped file when no such file exists where you run them.",
    )
    sub = p.add_subparsers(dest="resources_command", metavar="SUBCOMMAND")
    s = sub.add_parser("path", help="print where a shipped file or folder is")
    s.add_argument("name", nargs="?", default="", help="e.g. recipes, eval/docstring_summary.yaml (default: all)")
    s.set_defaults(func=run_path)
    c = sub.add_parser("copy", help="copy recipes/ and eval/ into DEST to edit them")
    c.add_argument("dest", help="destination folder (created; existing files are never overwritten)")
    c.set_defaults(func=run_copy)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def run_path(args: argparse.Namespace) -> int:
    from llmops.resources import path

    print(path(args.name))
    return 0


def run_copy(args: argparse.Namespace) -> int:
    import shutil
    from pathlib import Path

    from llmops.errors import UserError
    from llmops.resources import path

    dest = Path(args.dest)
    for kind in ("recipes", "eval"):
        target = dest / kind
        if target.exists():
            raise UserError(f"{target} exists: not overwriting it (choose another DEST)")
        shutil.copytree(path(kind), target, ignore=shutil.ignore_patterns("__pycache__"))
        print(target)
    return 0

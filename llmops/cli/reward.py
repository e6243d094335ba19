"""`llmops reward score --model REF --input FILE`: score (prompt, response) pairs with a reward model.

`llmops rm` is the old name, kept as a hidden alias for one release.
"""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    _register(subparsers, "reward", help="reward models: score responses")
    _register(subparsers, "rm", help=None, deprecated=True)  # old name, unlisted; remove in 0.3


def _register(subparsers: argparse._SubParsersAction, name: str, help: str | None, deprecated: bool = False) -> None:
    description = "Reward-model utilities. Train one with `llmops train recipes/reward.yaml`."
    if deprecated:
        description += " (`llmops rm` is deprecated: use `llmops reward`.)"
    # A sub-parser added without `help` is not listed in `llmops --help`.
    kwargs = {"help": help} if help else {}
    p = subparsers.add_parser(name, description=description, **kwargs)
    sub = p.add_subparsers(dest="reward_command", metavar="SUBCOMMAND")
    s = sub.add_parser(
        "score",
        help="score (prompt, response) rows, or the chosen/rejected sides of preference pairs",
        description="Score every row of FILE (JSONL/JSON/CSV/Parquet). A row has `prompt` and `response` "
        "(or `completion`), as text or chat messages; preference rows (prompt/chosen/rejected) get both sides "
        "scored and the pairwise accuracy reported (ties count as wrong).",
    )
    s.add_argument("--model", required=True, help="reward model reference (run dir final/, registry:NAME@ALIAS, ...)")
    s.add_argument("--input", required=True, help="rows to score")
    s.add_argument("--output", help="write the rows with scores added as JSONL here")
    s.add_argument("--batch-size", type=int, default=16)
    s.add_argument("--max-length", type=int, default=1024, help="token budget per sequence (prompt loses its start)")
    s.add_argument("--no-chat-template", action="store_true", help="tokenise as plain text, not via the chat template")
    s.add_argument("--json", action="store_true", help="print the summary as JSON")
    s.set_defaults(func=_warn_deprecated(run_score) if deprecated else run_score)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def _warn_deprecated(func):
    def wrapper(args: argparse.Namespace) -> int:
        import sys

        print("llmops: `llmops rm` is deprecated; use `llmops reward`", file=sys.stderr)
        return func(args)

    return wrapper


def run_score(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from llmops.preference.scoring import score_file

    summary, rows = score_file(
        args.model, args.input, batch_size=args.batch_size, max_length=args.max_length,
        chat_template=not args.no_chat_template,
    )
    if args.output:
        out = Path(args.output)
        out.parent.mkdir(parents=True, exist_ok=True)
        with out.open("w", encoding="utf-8") as fh:
            for row in rows:
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")
        summary["output"] = str(out)
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        for key, value in summary.items():
            print(f"{key}: {value:.4f}" if isinstance(value, float) else f"{key}: {value}")
    return 0

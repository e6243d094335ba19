"""`llmops data inspect FILE`: counts, format, token lengths, duplicates and truncation before training."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "data",
        help="inspect datasets",
        description="Look at a dataset the way training will see it.",
    )
    sub = p.add_subparsers(dest="data_command", metavar="SUBCOMMAND")
    sub.required = True
    insp = sub.add_parser(
        "inspect",
        help="counts, format, token-length percentiles, duplicate and truncation rates",
        description="Load FILE (.jsonl, .json, .csv, .parquet, a datasets directory, or builtin:docstrings), "
        "detect its format, tokenise it with the model's tokenizer (chat template included) and report "
        "counts, token-length percentiles (p50/p90/p99/max), the duplicate rate, and how many samples "
        "would be truncated or dropped at --max-length.",
    )
    insp.add_argument("file", metavar="FILE", help="dataset path or builtin:NAME")
    insp.add_argument("--model", default="builtin:tiny", help="model reference whose tokenizer counts tokens (default: builtin:tiny)")
    insp.add_argument("--max-length", type=int, default=512, help="token budget per sample (default: 512)")
    insp.add_argument("--split", default=None, help="split of a built-in or a saved DatasetDict (default: train)")
    insp.add_argument("--no-chat-template", action="store_true", help="count tokens without the chat template")
    insp.add_argument("--json", action="store_true", help="print the report as JSON")
    insp.set_defaults(func=run_inspect)


def run_inspect(args: argparse.Namespace) -> int:
    import json

    from llmops.data.inspect import format_report, inspect_records
    from llmops.data.loaders import load_records
    from llmops.errors import DataError
    from llmops.models.loading import load_tokenizer

    if args.max_length <= 0:
        raise DataError(f"--max-length must be > 0, got {args.max_length}")
    records = load_records(args.file, split=args.split)
    tokenizer = load_tokenizer(args.model)
    report = inspect_records(records, tokenizer, args.max_length, chat_template=not args.no_chat_template)
    if args.json:
        print(json.dumps({"dataset": args.file, "model": args.model, **report}, indent=2))
    else:
        print(format_report(args.file, args.model, report))
    return 0

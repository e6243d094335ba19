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
    insp.add_argument("--html", metavar="OUT", default=None,
                      help="also write a self-contained HTML report (histograms, duplicates, problems, scripts)")
    insp.add_argument("--recipe", default=None,
                      help="take --model, --max-length and the chat-template setting from this training recipe")
    insp.add_argument("--near-threshold", type=float, default=0.8, help="MinHash Jaccard for near duplicates (default 0.8)")
    insp.set_defaults(func=run_inspect)

    dd = sub.add_parser(
        "dedup",
        help="remove exact and near-duplicate records",
        description="Write IN without exact (normalised text) and near (MinHash Jaccard >= --threshold) duplicates "
        "to OUT (.jsonl); the first record of each group is kept. Prints a JSON report (also OUT.dedup.json).",
    )
    dd.add_argument("file", metavar="IN", help="dataset path or builtin:NAME")
    dd.add_argument("--out", required=True, help="output .jsonl")
    dd.add_argument("--threshold", type=float, default=0.8, help="MinHash Jaccard threshold (default 0.8)")
    dd.add_argument("--split", default=None, help="split of a built-in or saved DatasetDict")
    dd.set_defaults(func=run_dedup)

    ct = sub.add_parser(
        "contamination",
        help="n-gram overlap between an evaluation suite and training data",
        description="List the items of each --eval suite whose word n-grams occur in the training data "
        "(an item is contaminated when at least --threshold of its n-grams do). Exit 1 when any item is.",
    )
    ct.add_argument("--train", required=True, help="training dataset (path or builtin:NAME)")
    ct.add_argument("--train-split", default=None, help="split of a built-in training set (default: train)")
    ct.add_argument("--eval", required=True, action="append", metavar="SUITE", help="suite YAML (repeatable)")
    ct.add_argument("--ngram", type=int, default=8, help="word n-gram length (default 8)")
    ct.add_argument("--threshold", type=float, default=0.5, help="share of an item's n-grams seen in training (default 0.5)")
    ct.add_argument("--out", default=None, help="also write the JSON report here")
    ct.add_argument("--json", action="store_true", help="print JSON")
    ct.set_defaults(func=run_contamination)


def run_inspect(args: argparse.Namespace) -> int:
    import json

    from llmops.data.inspect import format_report, inspect_records
    from llmops.data.loaders import load_records
    from llmops.errors import DataError
    from llmops.models.loading import load_tokenizer

    chat_template = not args.no_chat_template
    if args.recipe:
        from llmops.config import load_recipe

        recipe = load_recipe(args.recipe, []).recipe
        args.model, args.max_length = recipe.model.base, recipe.data.max_length
        chat_template = chat_template and recipe.data.chat_template
    if args.max_length <= 0:
        raise DataError(f"--max-length must be > 0, got {args.max_length}")
    records = load_records(args.file, split=args.split)
    tokenizer = load_tokenizer(args.model)
    report = inspect_records(records, tokenizer, args.max_length, chat_template=chat_template,
                             near_threshold=args.near_threshold)
    token_lengths, char_lengths = report.pop("_token_lengths"), report.pop("_char_lengths")
    if args.html:
        from pathlib import Path

        from llmops.data.report_html import render

        out = Path(args.html)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(render(args.file, args.model, report, token_lengths, char_lengths), encoding="utf-8")
    if args.json:
        print(json.dumps({"dataset": args.file, "model": args.model, **report}, indent=2))
    else:
        print(format_report(args.file, args.model, report))
    return 0


def run_dedup(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from llmops.data.dedup import dedup
    from llmops.data.loaders import load_records

    records = load_records(args.file, split=args.split)
    kept, report = dedup(records, threshold=args.threshold)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8") as fh:
        for r in kept:
            fh.write(json.dumps(r, ensure_ascii=False) + "\n")
    doc = {"input": args.file, "output": str(out), **report.summary(),
           "exact_groups": report.exact_groups, "near_groups": report.near_groups}
    out.with_name(out.name + ".dedup.json").write_text(json.dumps(doc, indent=1))
    print(json.dumps({k: v for k, v in doc.items() if not k.endswith("_groups")}, indent=1))
    return 0


def run_contamination(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from llmops.eval.contamination import suite_contamination

    docs = [suite_contamination(args.train, s, n=args.ngram, threshold=args.threshold, train_split=args.train_split)
            for s in args.eval]
    if args.out:
        Path(args.out).write_text(json.dumps(docs, indent=1, ensure_ascii=False))
    if args.json:
        print(json.dumps(docs, indent=1, ensure_ascii=False))
    else:
        for d in docs:
            print(f"{d['suite']}: {d['contaminated']} of {d['eval_items']} items contaminated ({d['rate']:.2%}) "
                  f"by {d['train']} ({d['ngram']}-grams, threshold {d['threshold']})")
            for it in d["items"][:20]:
                print(f"  item {it['index']}: overlap {it['overlap']:.0%}  {it['text'][:100]!r}")
    return 1 if any(d["contaminated"] for d in docs) else 0

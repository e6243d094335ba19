"""`llmops bench REF1 REF2 ... --suite eval/X.yaml --out DIR`: checkpoints side by side."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    from llmops.cli.eval import _kv

    p = subparsers.add_parser(
        "bench",
        help="evaluate checkpoints side by side with paired significance tests",
        description="Evaluate each model on each suite, test every checkpoint against the first (McNemar for "
        "exact match/accuracy, paired bootstrap or approximate randomisation over sufficient statistics "
        "otherwise), and write report.md, report.html and bench.json into --out.",
    )
    p.add_argument("models", nargs="+", metavar="REF", help="model references; the first is the baseline")
    p.add_argument("--suite", action="append", required=True, help="suite YAML (repeatable)")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--backend", default="hf", choices=["hf", "vllm"])
    p.add_argument("--test", default="bootstrap", choices=["bootstrap", "randomization"],
                   help="paired test for non-binary metrics")
    p.add_argument("--label", action="append", help="display name per model (repeat in order)")
    p.add_argument("--limit", type=int, default=None, help="evaluate only the first N samples of each suite")
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--dtype", default=None, choices=["float32", "bfloat16", "float16", "auto"])
    p.add_argument("--device", default=None)
    p.add_argument("-s", "--set", action="append", type=_kv, default=[], dest="overrides", metavar="KEY=VALUE",
                   help="suite override, e.g. -s max_new_tokens=32")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from llmops.eval.bench import run_bench

    overrides = dict(args.overrides)
    for key in ("limit", "batch_size", "dtype", "device"):
        if getattr(args, key) is not None:
            overrides[key] = getattr(args, key)
    run_bench(args.models, args.suite, args.out, backend=args.backend, test=args.test, labels=args.label, **overrides)
    out = Path(args.out)
    print((out / "report.md").read_text())
    print(f"wrote {out / 'report.md'}, {out / 'report.html'}, {out / 'bench.json'}")
    return 0

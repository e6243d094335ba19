"""`llmops compress MODEL --method M --out DIR` and `llmops compress --pipeline FILE`."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    from llmops.cli.eval import _kv
    from llmops.compress.methods import METHODS

    methods = "; ".join(f"{m.name}: {m.summary}" + (" [CUDA only]" if m.needs_cuda else "") for m in METHODS.values())
    p = subparsers.add_parser(
        "compress",
        help="quantize (torchao) or prune a model, register it with lineage, bench it against its parent",
        description="Compress MODEL into --out, a folder plain transformers loads (quantization_config in "
        f"config.json). Methods: {methods}. With --bench-suite, one `llmops bench` run compares the parent and the "
        "compressed model (paired tests, size on disk, memory, tokens/s, latency). --pipeline FILE runs "
        "distillation → compression → evaluation → gated promotion instead.",
    )
    p.add_argument("model", nargs="?", metavar="MODEL", help="builtin:NAME, a local dir, an adapter dir or registry:NAME@ALIAS")
    p.add_argument("--method", choices=list(METHODS), help="compression method")
    p.add_argument("--out", help="output directory (replaced if it exists)")
    p.add_argument("-s", "--set", action="append", type=_kv, default=[], dest="settings", metavar="KEY=VALUE",
                   help="method setting, e.g. -s sparsity=0.5, -s fraction=0.25, -s group_size=32")
    p.add_argument("--device", default="cpu", help="cpu or cuda (int4-weight needs cuda)")
    p.add_argument("--recover-steps", type=int, default=0, help="pruning: steps of recovery fine-tuning (default 0)")
    p.add_argument("--recover-data", default="builtin:docstrings", help="pruning: data of the recovery fine-tune")
    p.add_argument("--recover-lr", type=float, default=1e-3, help="pruning: learning rate of the recovery fine-tune")
    p.add_argument("--register", metavar="NAME", default=None, help="register the result as the next version of NAME")
    p.add_argument("--bench-suite", action="append", default=[], metavar="SUITE", help="bench vs the parent on SUITE")
    p.add_argument("--bench-limit", type=int, default=None, help="evaluate only the first N items of each suite")
    p.add_argument("--bench-no-speed", action="store_true",
                   help="skip the bench's uncached speed pass (as `llmops bench --no-speed`)")
    p.add_argument("--pipeline", metavar="FILE", default=None, help="run a distill → compress → eval → promote pipeline")
    p.add_argument("--db", default=None, help="database URL (default: $LLMOPS_DATABASE_URL or SQLite in $LLMOPS_HOME)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import json

    from llmops.errors import UserError

    if args.pipeline:
        from llmops.compress.pipeline import run_pipeline

        doc = run_pipeline(args.pipeline, db_url=args.db)
        print(json.dumps(doc, indent=1, default=str))
        return 0 if doc.get("promotion", {}).get("decision") != "refused" else 1
    if not (args.model and args.method and args.out):
        raise UserError("compress needs MODEL, --method and --out (or --pipeline FILE)")
    from llmops.compress.api import compress

    result = compress(args.model, args.method, args.out, dict(args.settings), device=args.device,
                      recover_steps=args.recover_steps, recover_data=args.recover_data, recover_lr=args.recover_lr,
                      register_as=args.register, db_url=args.db)
    summary = {"out": str(result.out_dir), "registered": result.registered, **result.record}
    if args.bench_suite:
        from pathlib import Path

        from llmops.eval.bench import run_bench

        bench_dir = Path(args.out).parent / f"{Path(args.out).name}-bench"
        extra = {"limit": args.bench_limit} if args.bench_limit else {}
        run_bench([args.model, str(result.out_dir)], args.bench_suite, bench_dir,
                  labels=[args.model, args.method], footprint=True, speed=not args.bench_no_speed, **extra)
        print((bench_dir / "report.md").read_text())
        summary["bench"] = str(bench_dir)
    print(json.dumps(summary, indent=1, default=str))
    return 0

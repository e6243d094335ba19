"""`llmops bench REF1 REF2 ... --suite eval/X.yaml --out DIR`: checkpoints side by side."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    from llmops.cli.eval import _kv, batch_size_arg

    p = subparsers.add_parser(
        "bench",
        help="evaluate checkpoints side by side with paired significance tests",
        description="Evaluate each model on each suite, test every checkpoint against the first (McNemar for "
        "exact match/accuracy, paired bootstrap or approximate randomisation over sufficient statistics "
        "otherwise; delta intervals, Holm-corrected p-values, direction), time each model uncached in its own "
        "process (warm-up, fixed-length decoding, repeats, p50/p95 latency at batch 1 and batched, time to first "
        "token, peak memory), and write report.md, report.html and bench.json into --out. With --backend vllm each "
        "model is evaluated in a process of its own, so its engine's GPU memory is freed before the next.",
    )
    p.add_argument("models", nargs="+", metavar="REF", help="model references; the first is the baseline")
    p.add_argument("--suite", action="append", required=True, help="suite YAML (repeatable)")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--backend", default="hf", choices=["hf", "vllm"])
    p.add_argument("--test", default="bootstrap", choices=["bootstrap", "randomization"],
                   help="paired test for non-binary metrics")
    p.add_argument("--label", action="append", help="display name per model (repeat in order)")
    p.add_argument("--footprint", action="store_true",
                   help="add weights on disk, model RSS, load time and bs1 tokens/s measured per model in a fresh process")
    p.add_argument("--limit", type=int, default=None, help="evaluate only the first N samples of each suite")
    p.add_argument("--batch-size", type=batch_size_arg, default=None, help="N or `auto`")
    p.add_argument("--dtype", default=None, choices=["float32", "bfloat16", "float16", "auto"])
    p.add_argument("--device", default=None)
    p.add_argument("--isolate", action=argparse.BooleanOptionalAction, default=None,
                   help="evaluate each model in a process of its own that exits before the next, freeing its memory "
                   "(default: on with --backend vllm, off with hf)")
    p.add_argument("--no-speed", action="store_true", help="skip the uncached speed pass")
    p.add_argument("--speed-prompts", type=int, default=16, help="prompts (from the first suite) timed per model")
    p.add_argument("--speed-new-tokens", type=int, default=32, help="tokens generated per request (fixed length)")
    p.add_argument("--speed-batch-size", type=int, default=8, help="batch size of the batched measurement")
    p.add_argument("--speed-repeats", type=int, default=3)
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
    run_bench(args.models, args.suite, args.out, backend=args.backend, test=args.test, labels=args.label,
              speed=not args.no_speed, speed_prompts_n=args.speed_prompts, speed_new_tokens=args.speed_new_tokens,
              speed_batch_size=args.speed_batch_size, speed_repeats=args.speed_repeats,
              footprint=args.footprint, isolate=args.isolate, **overrides)
    out = Path(args.out)
    print((out / "report.md").read_text())
    print(f"wrote {out / 'report.md'}, {out / 'report.html'}, {out / 'bench.json'}")
    return 0

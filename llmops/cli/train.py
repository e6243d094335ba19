"""`llmops train RECIPE [key=value ...] [--resume]`: run a training recipe.

One process by default; several with ``accelerate launch [--multi_gpu|--config_file F]
--num_processes N -m llmops train RECIPE`` (see recipes/accelerate/ and docs/training.md).
"""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "train",
        help="train a recipe (SFT, LoRA, distillation, preference) into output.dir",
        description="Train RECIPE with dotted KEY=VALUE overrides. Writes manifest.json, metrics.jsonl, "
        "checkpoints/, final/ and loss.png to output.dir. Multi-process: "
        "`accelerate launch --multi_gpu --num_processes N -m llmops train RECIPE` (gloo on CPU).",
    )
    p.add_argument("recipe", help="path to a recipe YAML file (see recipes/)")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="e.g. train.max_steps=20 output.dir=runs/x")
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue from the newest complete checkpoint in output.dir (fresh start if none)",
    )
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        metavar="N",
        help="intra-op CPU threads per process (default: usable CPUs / local processes; see docs/training.md)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import json

    from llmops.config import load_recipe
    from llmops.eval.contamination import recipe_contamination
    from llmops.eval.in_training import generation_validator
    from llmops.train import run as train_run

    import os

    if args.threads is not None:
        if args.threads < 1:
            from llmops.errors import UserError

            raise UserError(f"--threads {args.threads}: must be a positive integer")
        os.environ["LLMOPS_THREADS"] = str(args.threads)  # the engine applies it (and launched ranks inherit it)
    loaded = load_recipe(args.recipe, args.overrides)
    result = train_run(loaded, resume=args.resume, contamination_check=recipe_contamination,
                       generation_validator=generation_validator)
    from accelerate import PartialState

    if PartialState().is_main_process:
        summary = {
            "run_dir": str(result.run_dir),
            "final": str(result.final_dir),
            "status": result.status,
            "steps": result.steps,
            "world_size": result.manifest.get("world_size"),
            "metrics": result.metrics,
        }
        if result.registered:
            summary["registered"] = result.registered
        print(json.dumps(summary, indent=2))
    return 0

"""`llmops validate RECIPE [key=value ...]`: print the resolved recipe or say what is wrong."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "validate",
        help="validate a recipe (with overrides) and print the resolved result",
        description="Validate RECIPE with dotted KEY=VALUE overrides and print the resolved YAML and its hash. "
        "Exit code 2 and one message naming the key path when anything is invalid.",
    )
    p.add_argument("recipe", help="path to a recipe YAML file")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="e.g. train.max_steps=20 output.dir=runs/x")
    p.add_argument("--json", action="store_true", help="print JSON instead of YAML")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import json

    from llmops.config import load_recipe

    loaded = load_recipe(args.recipe, args.overrides)
    if args.json:
        print(json.dumps({"recipe": loaded.resolved, "hash": loaded.hash}, indent=2))
    else:
        print(f"# resolved from {loaded.source}" + (f" with {' '.join(loaded.overrides)}" if loaded.overrides else ""))
        print(f"# recipe hash: {loaded.hash}")
        print(loaded.to_yaml(), end="")
    return 0

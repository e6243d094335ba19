"""`llmops models list|path`: the built-in models and where any model reference lives locally."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "models",
        help="list built-in models; materialise a model reference",
        description="Built-in models (builtin:NAME) are built locally on first use, with no download, "
        "and cached under $LLMOPS_HOME/models.",
    )
    sub = p.add_subparsers(dest="models_command", metavar="SUBCOMMAND")
    sub.required = True

    ls = sub.add_parser(
        "list",
        help="show the built-in models, whether each is cached, its size and path",
        description="Show every built-in model with its parameters, whether it is already built "
        "in this $LLMOPS_HOME, its size on disk and its directory. Builds nothing.",
    )
    ls.add_argument("--json", action="store_true", help="print JSON instead of a table")
    ls.set_defaults(func=run_list)

    path = sub.add_parser(
        "path",
        help="materialise a model reference and print its local directory",
        description="Resolve REF (builtin:NAME, registry:NAME@ALIAS, registry:NAME/VERSION, a local "
        "directory or a hub id in the local HF cache), building a built-in on first use, and print "
        "the directory that holds it.",
    )
    path.add_argument("ref", metavar="REF", help="model reference, e.g. builtin:tiny")
    path.set_defaults(func=run_path)


def run_list(args: argparse.Namespace) -> int:
    import json

    from llmops.models.builtin import BUILTINS, cached_path, dir_size, models_dir

    rows = []
    for name, spec in BUILTINS.items():
        path = cached_path(name)
        sidecar = json.loads((path / "llmops_model.json").read_text()) if path else {}
        rows.append(
            {
                "ref": f"builtin:{name}",
                "cached": path is not None,
                "params": sidecar.get("param_count"),
                "size_bytes": dir_size(path) if path else None,
                "path": str(path if path else models_dir() / spec.dir_name),
                "description": spec.description,
            }
        )
    current = {r["path"] for r in rows}
    stale = [  # builds of older specs/Python versions: never used again, safe to delete
        {"path": str(p), "size_bytes": dir_size(p)}
        for p in sorted(models_dir().iterdir())
        if p.is_dir() and (p / "llmops_model.json").exists() and str(p) not in current
    ]
    if args.json:
        print(json.dumps(rows + [{"ref": None, "stale": True, **s} for s in stale], indent=2))
        return 0
    print(f"{'REF':<22} {'CACHED':<7} {'PARAMS':>9} {'SIZE':>8}  PATH")
    for r in rows:
        params = f"{r['params']:,}" if r["params"] else "-"
        size = f"{r['size_bytes'] / 1e6:.1f}MB" if r["size_bytes"] else "-"
        print(f"{r['ref']:<22} {'yes' if r['cached'] else 'no':<7} {params:>9} {size:>8}  {r['path']}")
        print(f"{'':<22} {r['description']}")
    if stale:
        print("\nolder builds (other specs or Python versions; safe to delete):")
        for st in stale:
            print(f"  {st['size_bytes'] / 1e6:.1f}MB  {st['path']}")
    return 0


def run_path(args: argparse.Namespace) -> int:
    from llmops.models.refs import resolve_model

    print(resolve_model(args.ref))
    return 0

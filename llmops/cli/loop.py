"""`llmops loop --config recipes/loop/default.yaml [--once]`: retrain when an alert fires."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "loop",
        help="automated retraining: alert fires -> export feedback -> train -> evaluate -> promote through the gates",
        description="Every --interval (config `interval`), evaluate the alert rules; for each new incident of a "
        "watched rule, export fresh feedback, run the retraining recipe, evaluate against production and "
        "promote only through the gates (and only if better). Incidents are recorded in the state directory: "
        "restarting is safe and never retrains or promotes twice.",
    )
    p.add_argument("--config", required=True, help="loop config YAML (see recipes/loop/default.yaml)")
    p.add_argument("--db", default=None, help="database URL (default: config `db`, $LLMOPS_DATABASE_URL, SQLite)")
    p.add_argument("--once", action="store_true", help="run a single tick and exit")
    p.add_argument("--iterations", type=int, default=None, help="stop after N ticks (default: run forever)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import json
    import os

    from llmops.loop.retrain import RetrainLoop
    from llmops.loop.retrain_config import load_loop_config
    from llmops.settings import database_url

    config = load_loop_config(args.config)
    db = database_url(args.db or config.db)
    os.environ["LLMOPS_DATABASE_URL"] = db  # training registers its result in the same database
    loop = RetrainLoop(config, db)

    def show(result: dict) -> None:
        print(json.dumps({"at": result["at"],
                          "rules": [{k: r[k] for k in ("rule", "value", "state", "event", "detail")} for r in result["rules"]],
                          "incidents": [{k: i.get(k) for k in ("incident", "rule", "status", "candidate", "outcome", "why")}
                                        for i in result["incidents"]]}), flush=True)

    loop.run_forever(1 if args.once else args.iterations, on_tick=show)
    return 0

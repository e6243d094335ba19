"""`llmops feedback stats`: what the UI's feedback page shows, from the shell (same functions);
`llmops feedback rollup`: the daily rollups those summaries read, ahead of time."""

from __future__ import annotations

import argparse
import json
from datetime import timedelta

WINDOWS = {"1d": timedelta(days=1), "7d": timedelta(days=7), "30d": timedelta(days=30)}


def register(sub: argparse._SubParsersAction, db_help: str) -> None:
    p = sub.add_parser("stats", help="rating distributions per model version, rater progress, agreement, critiques")
    p.add_argument("--window", choices=sorted(WINDOWS), default="7d", help="ratings given within this window")
    p.add_argument("--limit", type=int, default=50, help="raters and critiques shown")
    p.add_argument("--json", action="store_true")
    p.add_argument("--db", help=db_help)
    p.set_defaults(func=cmd_stats)
    r = sub.add_parser("rollup", help="sum every complete past day of ratings and comparisons into the daily "
                                      "rollups (otherwise done on the first read that needs them)")
    r.add_argument("--db", help=db_help)
    r.set_defaults(func=cmd_rollup)


def cmd_rollup(args: argparse.Namespace) -> int:
    """Roll up ahead of time (after an import, at server start) so no page view pays for it."""
    import time

    from llmops.db.migrate import prepare
    from llmops.feedback.rollups import SAFETY_MARGIN, rollup

    prepare(args.db, migrate=False)
    t0 = time.perf_counter()
    days = rollup(args.db)
    print(f"rolled up {days} days in {time.perf_counter() - t0:.1f} s (days closed more than "
          f"{SAFETY_MARGIN} ago; later ones are read from the rows)")
    return 0


def cmd_stats(args: argparse.Namespace) -> int:
    from llmops.db.migrate import prepare
    from llmops.feedback import dashboard

    prepare(args.db, migrate=False)
    window = WINDOWS[args.window]
    data = {"window": args.window, "distribution": dashboard.rating_distribution(args.db, window),
            "raters": dashboard.rater_progress(args.db, args.limit, window=window)[0],
            "agreement": dashboard.recent_agreement(args.db),
            "critiques": dashboard.recent_critiques(args.db, args.limit)[0]}
    if args.json:
        print(json.dumps(data, indent=2, default=str))
        return 0
    alpha = data["agreement"]["alpha_interval"]
    print(f"agreement: alpha (interval) {'n/a' if alpha is None else f'{alpha:.3f}'} over the newest "
          f"{data['agreement']['n_ratings']} ratings")
    for d in data["distribution"]:
        mean = "-" if d["mean"] is None else f"{d['mean']:.2f}"
        print(f"{str(d['model_version']):<24} ratings {d['n']:>7}  mean {mean:>5}  "
              + " ".join(f"{s}:{c}" for s, c in d["counts"].items()))
    for r in data["raters"]:
        print(f"rater {r['name']:<24} ratings {r['n_ratings']:>6} in {args.window}; "
              f"critiques {r['n_critiques']}, comparisons {r['n_comparisons']}")
    for c in data["critiques"][:10]:
        print(f"critique by {c['rater']} ({c['score']}/{c['scale'][1]}, {c['model_version']}): {c['critique'][:100]}")
    return 0

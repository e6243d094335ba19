"""`llmops tune RECIPE --space SPACE.yaml`, `llmops tune --join STUDY`, `llmops tune best|report STUDY`."""

from __future__ import annotations

import argparse

ACTIONS = ("best", "report")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "tune",
        help="cost-aware hyper-parameter search over recipe keys (Optuna, study in the project database)",
        description="`llmops tune RECIPE --space SPACE.yaml` starts (or continues) a study: every trial is an "
        "ordinary training run in --out/STUDY/trial-NNNN; objectives: eval_loss, suite:METRIC, wall_time_s, "
        "tokens_per_s, peak_mem_mb, cost. `llmops tune --join STUDY` adds a worker (same --db). "
        "`llmops tune best STUDY --objective NAME --out recipe.yaml` writes the chosen trial's recipe; "
        "`llmops tune report STUDY --html OUT` writes the report (Pareto front, history, importances).",
    )
    p.add_argument("target", nargs="?", metavar="RECIPE|best|report", help="recipe YAML, or the action best/report")
    p.add_argument("study", nargs="?", metavar="STUDY", help="study name (with best/report)")
    p.add_argument("--space", help="search-space YAML (see docs/tuning.md)")
    p.add_argument("--join", metavar="STUDY", help="add this process as a worker of an existing study")
    p.add_argument("--trials", type=int, default=None, help="trials this worker runs (default: the space's `trials`)")
    p.add_argument("--out", default=None, help="runs directory (default runs/tune); with best: the recipe to write")
    p.add_argument("--objective", default=None, help="best: the objective to optimise among the Pareto front")
    p.add_argument("--html", default=None, help="report: output file")
    p.add_argument("--db", default=None, help="database URL (default: $LLMOPS_DATABASE_URL or SQLite in $LLMOPS_HOME)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from llmops.errors import UserError

    try:
        import optuna  # noqa: F401
    except ImportError:
        raise UserError("llmops tune needs Optuna: pip install 'llmops[tune]'") from None
    from llmops.tune import study as st

    action = args.target if args.target in ACTIONS and not Path(args.target).is_file() else None
    if action == "best":
        if not (args.study and args.out):
            raise UserError("usage: llmops tune best STUDY [--objective NAME] --out recipe.yaml")
        print(json.dumps(st.best_recipe(args.db, args.study, args.objective, args.out), indent=1, default=str))
        return 0
    if action == "report":
        if not (args.study and args.html):
            raise UserError("usage: llmops tune report STUDY --html OUT")
        from llmops.tune.report import write_report

        study = st.create_or_join(args.db, study_name=args.study)[0]
        print(write_report(study, args.html))
        return 0
    if args.join and (args.target or args.space):
        raise UserError("--join STUDY takes the recipe and space from the study: give neither RECIPE nor --space")
    if not args.join and not (args.target and args.space):
        raise UserError("usage: llmops tune RECIPE --space SPACE.yaml | llmops tune --join STUDY")
    result = st.optimize(args.db, args.out or "runs/tune", recipe_path=args.target, space_path=args.space,
                         join=args.join, trials=args.trials)
    print(json.dumps(result, indent=1, default=str))
    return 0

"""`llmops feedback projects create|list|progress` and `llmops feedback quality`: rating projects from the shell."""

from __future__ import annotations

import argparse
import json
import sys


def register(sub: argparse._SubParsersAction, db_help: str) -> None:
    p = sub.add_parser("projects", help="create and list rating projects; show their progress")
    psub = p.add_subparsers(dest="projects_command", metavar="ACTION", required=True)
    pc = psub.add_parser("create", help="create a project from a JSON or YAML file (the body of POST /v1/projects)")
    pc.add_argument("file")
    pc.add_argument("--db", help=db_help)
    pc.set_defaults(func=projects_create)
    pl = psub.add_parser("list", help="list projects (name, overlap k, questions, routing)")
    pl.add_argument("--db", help=db_help)
    pl.set_defaults(func=projects_list)
    pp = psub.add_parser("progress", help="items complete, answers, skips and claims, per rater")
    pp.add_argument("--project", required=True)
    pp.add_argument("--json", action="store_true")
    pp.add_argument("--db", help=db_help)
    pp.set_defaults(func=projects_progress)

    q = sub.add_parser("quality", help="rater agreement per question, each rater against the rest, gold accuracy")
    q.add_argument("--project", required=True)
    q.add_argument("--level", choices=["ordinal", "interval"], default="ordinal",
                   help="level of measurement of Krippendorff's alpha for ratings (default: ordinal)")
    q.add_argument("--json", action="store_true", help="print the full report as JSON")
    q.add_argument("--db", help=db_help)
    q.set_defaults(func=quality)


def _sessions(db: str | None, *, writes: bool):
    from llmops.cli.feedback import _sessions as sessions

    return sessions(db, writes=writes)


def projects_create(args: argparse.Namespace) -> int:
    from pathlib import Path

    import yaml

    from llmops.errors import UserError
    from llmops.feedback.project_schemas import ProjectIn
    from llmops.feedback.projects import create_project

    try:
        raw = yaml.safe_load(Path(args.file).read_text(encoding="utf-8"))
        body = ProjectIn.model_validate(raw)
    except (OSError, yaml.YAMLError, ValueError) as exc:
        raise UserError(f"{args.file}: {exc}") from exc
    with _sessions(args.db, writes=True)() as s, s.begin():
        out = create_project(s, body)
    print(f"created project {out.name!r} (overlap k={out.overlap_k}, {len(out.questions)} questions)")
    return 0


def projects_list(args: argparse.Namespace) -> int:
    from llmops.feedback.projects import list_projects

    with _sessions(args.db, writes=False)() as s:
        rows = list_projects(s)
    print(f"{'NAME':24} {'K':>3} {'DEFAULT':7} QUESTIONS / ROUTING")
    for p in rows:
        questions = ",".join(f"{q.name}:{q.type}" for q in p.questions)
        routing = "explicit only" if p.routing is None else json.dumps(p.routing.model_dump())
        print(f"{p.name:24} {p.overlap_k:>3} {'yes' if p.is_default else '':7} {questions} / {routing}")
    return 0


def projects_progress(args: argparse.Namespace) -> int:
    from llmops.feedback.assignment import progress
    from llmops.feedback.projects import get_project

    with _sessions(args.db, writes=False)() as s:
        out = progress(s, get_project(s, args.project))
    if args.json:
        print(json.dumps(out.model_dump(), indent=2))
        return 0
    print(f"{out.project}: {out.n_complete}/{out.n_items} items complete (k={out.overlap_k}), "
          f"{out.n_answers} answers, {out.n_skips} skips, {out.n_claimed} open claims")
    for r in out.raters:
        print(f"  {r.rater:24} answered {r.answered:5}  skipped {r.skipped:5}  claimed {r.claimed:3}")
    return 0


def _fmt(x) -> str:
    return "n/a" if x is None else f"{x:.3f}"


def quality(args: argparse.Namespace) -> int:
    from llmops.feedback.quality import project_quality

    with _sessions(args.db, writes=False)() as s:
        report = project_quality(s, args.project, level=args.level)
    if args.json:
        json.dump(report, sys.stdout, indent=2)
        print()
        return 0
    print(f"{report['project']}: {report['n_items']} items ({report['n_gold_items']} gold), k={report['overlap_k']}")
    for name, q in report["questions"].items():
        if q["type"] == "rating":
            print(f"  {name} (rating): alpha_{q['level']}={_fmt(q['alpha'])} over {q['n_units']} responses")
        else:
            print(f"  {name} (preference): pairwise agreement={_fmt(q['pairwise_agreement'])} "
                  f"over {q['n_rater_pairs']} rater pairs, alpha_nominal={_fmt(q['alpha_nominal'])}")
    for r in report["raters"]:
        ratings, gold = r["ratings"] or {}, r["gold"] or {}
        print(f"  {r['rater']:20} mae_vs_rest={_fmt(ratings.get('mae_vs_rest'))} "
              f"pref_agreement={_fmt(r['preference']['agreement_vs_rest'])} "
              f"gold_rating_acc={_fmt(gold.get('rating_accuracy'))} gold_pref_acc={_fmt(gold.get('preference_accuracy'))}")
    return 0

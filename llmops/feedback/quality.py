"""Quality of a project's raters: agreement per question, each rater against the rest, gold accuracy.

- Rating questions: Krippendorff's alpha (ordinal, and interval for comparison) over units =
  responses, computed by the `krippendorff` package (checked against Krippendorff's 2011
  worked example in the tests); per rater, the mean absolute difference to the mean of the
  other raters on the same response, the share of exactly equal pairs, and the alpha of the
  other raters without them (an outlier shows as ``alpha_without`` well above the overall alpha).
- Preference questions: units = (item, pair of responses) with the label "first better",
  "second better" or "tie" read from each comparison's ranks; pairwise agreement = the share
  of rater pairs giving the same label (and nominal alpha); per rater, the same share over
  the pairs they are in.
- Gold items (`projects.set_gold`): per rater, the share of gold scores hit exactly, the mean
  absolute error, and the share of gold preference pairs labelled as the gold answer.

Only answers on the project's items count. The result names the newest rating and
comparison ids it read (provenance: the same ids give the same numbers).
"""

from __future__ import annotations

from collections import defaultdict
from importlib.metadata import version
from itertools import combinations
from typing import Any

import krippendorff
import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from llmops.feedback.projects import get_project
from llmops.feedback.tables import Comparison, ComparisonEntry, ProjectItem, Rater, Rating, utcnow

Unit = tuple[Any, ...]


def alpha(units: dict[Unit, dict[int, float]], level: str) -> float | None:
    """Krippendorff's alpha of `units` (unit → rater → value); None when undefined (no pairable
    unit, or one value only)."""
    pairable = {u: v for u, v in units.items() if len(v) >= 2}
    values = {x for v in pairable.values() for x in v.values()}
    if not pairable or len(values) < 2:
        return None
    raters = sorted({r for v in pairable.values() for r in v})
    col = {u: j for j, u in enumerate(pairable)}
    data = np.full((len(raters), len(pairable)), np.nan)
    for i, r in enumerate(raters):
        for u, v in pairable.items():
            if r in v:
                data[i, col[u]] = v[r]
    return float(krippendorff.alpha(reliability_data=data, level_of_measurement=level))


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 4)


def _pairwise(units: dict[Unit, dict[int, Any]]) -> tuple[int, int, dict[int, list[int]]]:
    """(agreeing pairs, pairs, rater → [agreeing, total]) over every unit's rater pairs."""
    agree = total = 0
    per: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    for v in units.values():
        for a, b in combinations(sorted(v), 2):
            same = int(v[a] == v[b])
            agree, total = agree + same, total + 1
            for r in (a, b):
                per[r][0] += same
                per[r][1] += 1
    return agree, total, per


def _rating_units(session: Session, project_id: int) -> tuple[dict[Unit, dict[int, float]], int | None]:
    rows = session.execute(
        select(Rating.item_id, Rating.response_id, Rating.rater_id, Rating.score, Rating.id)
        .join(ProjectItem, ProjectItem.item_id == Rating.item_id)
        .where(ProjectItem.project_id == project_id)
    ).all()
    units: dict[Unit, dict[int, float]] = defaultdict(dict)
    for item_id, response_id, rater_id, score, _ in rows:
        units[(item_id, response_id)][rater_id] = float(score)
    return dict(units), max((r.id for r in rows), default=None)


def preference_labels(ranks: dict[int, int]) -> dict[tuple[int, int], str]:
    """(a, b) with a < b → "first" (a better), "second" (b better) or "tie", from one comparison's ranks."""
    out = {}
    for a, b in combinations(sorted(ranks), 2):
        out[(a, b)] = "tie" if ranks[a] == ranks[b] else "first" if ranks[a] < ranks[b] else "second"
    return out


def _preference_units(session: Session, project_id: int) -> tuple[dict[Unit, dict[int, str]], int | None]:
    rows = session.execute(
        select(Comparison.id, Comparison.item_id, Comparison.rater_id, ComparisonEntry.response_id, ComparisonEntry.rank)
        .join(ComparisonEntry, ComparisonEntry.comparison_id == Comparison.id)
        .join(ProjectItem, ProjectItem.item_id == Comparison.item_id)
        .where(ProjectItem.project_id == project_id)
    ).all()
    ranks: dict[tuple[int, int, int], dict[int, int]] = defaultdict(dict)
    for cid, item_id, rater_id, response_id, rank in rows:
        ranks[(cid, item_id, rater_id)][response_id] = rank
    units: dict[Unit, dict[int, str]] = defaultdict(dict)
    for (_cid, item_id, rater_id), r in ranks.items():
        for pair, label in preference_labels(r).items():
            units[(item_id, *pair)][rater_id] = label
    return dict(units), max((r.id for r in rows), default=None)


def _rater_ratings(units: dict[Unit, dict[int, float]], level: str) -> dict[int, dict[str, Any]]:
    out: dict[int, dict[str, Any]] = {}
    raters = {r for v in units.values() for r in v}
    for r in raters:
        diffs, exact, pairs, n = [], 0, 0, 0
        for v in units.values():
            if r not in v:
                continue
            n += 1
            others = [x for o, x in v.items() if o != r]
            if others:
                diffs.append(abs(v[r] - float(np.mean(others))))
                exact += sum(1 for x in others if x == v[r])
                pairs += len(others)
        rest = {u: {o: x for o, x in v.items() if o != r} for u, v in units.items()}
        out[r] = {
            "n_ratings": n,
            "n_shared": len(diffs),
            "mae_vs_rest": _round(float(np.mean(diffs))) if diffs else None,
            "exact_vs_rest": _round(exact / pairs) if pairs else None,
            "alpha_without": _round(alpha(rest, level)),
        }
    return out


def _gold(session: Session, project_id: int, ratings: dict[Unit, dict[int, float]],
          prefs: dict[Unit, dict[int, str]]) -> dict[int, dict[str, Any]]:
    gold_rows = session.execute(
        select(ProjectItem.item_id, ProjectItem.gold).where(ProjectItem.project_id == project_id,
                                                            ProjectItem.gold.is_not(None))
    ).all()
    per: dict[int, dict[str, list[float]]] = defaultdict(lambda: {"hit": [], "err": [], "pref": []})
    items = set()
    for item_id, gold in gold_rows:
        if not gold:
            continue
        items.add(item_id)
        for response_id, score in (gold.get("ratings") or {}).items():
            for rater, x in ratings.get((item_id, int(response_id)), {}).items():
                per[rater]["hit"].append(float(x == score))
                per[rater]["err"].append(abs(x - score))
        if gold.get("preference"):
            from llmops.feedback.schemas import PreferenceIn

            truth = preference_labels(PreferenceIn.model_validate(gold["preference"]).ranks())
            for pair, label in truth.items():
                for rater, given in prefs.get((item_id, *pair), {}).items():
                    per[rater]["pref"].append(float(given == label))
    out = {}
    for rater, v in per.items():
        out[rater] = {
            "n_gold_ratings": len(v["hit"]),
            "rating_accuracy": _round(float(np.mean(v["hit"]))) if v["hit"] else None,
            "rating_mae": _round(float(np.mean(v["err"]))) if v["err"] else None,
            "n_gold_pairs": len(v["pref"]),
            "preference_accuracy": _round(float(np.mean(v["pref"]))) if v["pref"] else None,
        }
    return out


def project_quality(session: Session, name: str, level: str = "ordinal") -> dict[str, Any]:
    """Agreement per question, per rater against the rest, and gold accuracy (see the module docstring)."""
    project = get_project(session, name)
    ratings, max_rating_id = _rating_units(session, project.id)
    prefs, max_comparison_id = _preference_units(session, project.id)
    questions: dict[str, Any] = {}
    for q in project.questions:
        if q["type"] == "rating":
            questions[q["name"]] = {
                "type": "rating",
                "alpha": _round(alpha(ratings, level)),
                "level": level,
                "alpha_interval": _round(alpha(ratings, "interval")),
                "n_units": sum(1 for v in ratings.values() if len(v) >= 2),
                "n_ratings": sum(len(v) for v in ratings.values()),
            }
        elif q["type"] == "preference":
            agree, total, _ = _pairwise(prefs)
            coded = {u: {r: {"first": 0.0, "second": 1.0, "tie": 2.0}[x] for r, x in v.items()} for u, v in prefs.items()}
            questions[q["name"]] = {
                "type": "preference",
                "pairwise_agreement": _round(agree / total) if total else None,
                "n_rater_pairs": total,
                "alpha_nominal": _round(alpha(coded, "nominal")),
                "n_units": sum(1 for v in prefs.values() if len(v) >= 2),
            }
    per_rating = _rater_ratings(ratings, level)
    _, _, per_pref = _pairwise(prefs)
    gold = _gold(session, project.id, ratings, prefs)
    names = dict(session.execute(select(Rater.id, Rater.name).where(
        Rater.id.in_(set(per_rating) | set(per_pref) | set(gold))
    )).all())
    raters = []
    for rid in sorted(names, key=lambda r: names[r]):
        agree, total = per_pref.get(rid, (0, 0))
        raters.append({
            "rater": names[rid],
            "ratings": per_rating.get(rid),
            "preference": {"n_rater_pairs": total, "agreement_vs_rest": _round(agree / total) if total else None},
            "gold": gold.get(rid),
        })
    n_items = session.scalar(select(func.count()).where(ProjectItem.project_id == project.id)) or 0
    n_gold = session.scalar(select(func.count()).where(ProjectItem.project_id == project.id,
                                                        ProjectItem.gold.is_not(None))) or 0
    return {
        "project": project.name,
        "overlap_k": project.overlap_k,
        "n_items": n_items,
        "n_gold_items": n_gold,
        "questions": questions,
        "raters": raters,
        "provenance": {
            "computed_at": utcnow().isoformat(),
            "max_rating_id": max_rating_id,
            "max_comparison_id": max_comparison_id,
            "alpha": f"krippendorff {version('krippendorff')}",
        },
    }

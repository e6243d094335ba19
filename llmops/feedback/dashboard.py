"""Read-only summaries of the feedback store for the web UI and the CLI: raters, distributions, critiques.

Built to stay fast on millions of ratings: every list is a keyset page on an indexed column
(``feedback_raters.id``, ``feedback_ratings.id``), and aggregates over ratings are bounded by a
time window on the indexed ``feedback_ratings.created_at`` (default: the last 7 days), the way
a monitoring dashboard reads recent traffic rather than all of history.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import and_, func, or_, select, true

from llmops.db.engine import read_only_session
from llmops.feedback.agreement import krippendorff_alpha
from llmops.feedback.queries import no_jit
from llmops.feedback.tables import Comparison, Correction, Item, Rater, Rating, Response

MAX_PAGE = 500
DEFAULT_WINDOW = timedelta(days=7)


def _limit(limit: int) -> int:
    if limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")
    return min(int(limit), MAX_PAGE)


def _since(window: timedelta | None, now: datetime | None) -> datetime | None:
    return None if window is None else (now or datetime.now(timezone.utc)) - window


def rater_progress(db_url: str | None, limit: int = 50, after: int | None = None,
                   window: timedelta | None = timedelta(days=7), now: datetime | None = None
                   ) -> tuple[list[dict[str, Any]], int | None]:
    """Raters by id with their ratings, critiques and comparisons in the window and last activity there,
    plus the next page's cursor. Counts stay within the window (an indexed range): a count over all
    of history would grow with it (per-project totals: `llmops.feedback.assignment.progress`)."""
    n = _limit(limit)
    since = _since(window, now)
    with read_only_session(db_url) as s:
        q = select(Rater.id, Rater.name).order_by(Rater.id).limit(n + 1)
        if after is not None:
            q = q.where(Rater.id > after)
        raters = s.execute(q).all()
        ids = [r[0] for r in raters[:n]]
        stats: dict[int, dict[str, Any]] = {i: {"n_ratings": 0, "n_critiques": 0, "n_comparisons": 0,
                                               "last_at": None} for i in ids}
        if ids:
            rq = (select(Rating.rater_id, func.count(Rating.id), func.count(Rating.critique), func.max(Rating.created_at))
                  .where(Rating.rater_id.in_(ids)).group_by(Rating.rater_id))
            cq = (select(Comparison.rater_id, func.count(Comparison.id), func.max(Comparison.created_at))
                  .where(Comparison.rater_id.in_(ids)).group_by(Comparison.rater_id))
            if since is not None:
                rq, cq = rq.where(Rating.created_at >= since), cq.where(Comparison.created_at >= since)
            for rid, cnt, crit, last in s.execute(rq):
                stats[rid].update(n_ratings=int(cnt), n_critiques=int(crit), last_at=last)
            for rid, cnt, last in s.execute(cq):
                st = stats[rid]
                st["n_comparisons"] = int(cnt)
                if last is not None and (st["last_at"] is None or last > st["last_at"]):
                    st["last_at"] = last
    rows = [{"rater_id": rid, "name": name, **stats[rid],
             "last_at": stats[rid]["last_at"].isoformat() if stats[rid]["last_at"] else None}
            for rid, name in raters[:n]]
    return rows, (ids[-1] if len(raters) > n and ids else None)


def rating_distribution(db_url: str | None, window: timedelta | None = DEFAULT_WINDOW,
                        now: datetime | None = None) -> list[dict[str, Any]]:
    """Per model version (as served): the count of each score on its scale, ratings given in the window.

    Groups by the model version each rating carries (copied from its response when written):
    complete past days come from the daily rollups (`llmops.feedback.rollups`), the window's first
    partial day and the days not rolled up (today's) from the ratings, without a join."""
    from llmops.feedback import rollups
    from llmops.feedback.tables import RollupRating

    windows = [(rollups.utc(_since(window, now)), None)]
    with read_only_session(db_url) as s:
        candidates = rollups.plan(s, windows)
    rollups.ensure(db_url, candidates[0])
    out: dict[tuple, dict[str, Any]] = {}
    with read_only_session(db_url, snapshot=True) as s, s.begin():
        no_jit(s)
        have = rollups.rolled_days(s, candidates)
        rolled = [[d for d in candidates[0] if d in have]]
        plus, minus = rollups.split(windows, rolled)
        cols = (Rating.model_version, Rating.scale_min, Rating.scale_max, Rating.score)
        rows = [(version, lo, hi, score, cnt) for _, version, lo, hi, score, cnt, _ in rollups.rolled_ratings(
            s, rolled, RollupRating.model_version, RollupRating.scale_min, RollupRating.scale_max, RollupRating.score)]
        for sign, segments in ((1, plus), (-1, minus)):
            if segments:
                conds = [and_(true(), *rollups.in_range(Rating.created_at, a, b)) for _, a, b in segments]
                rows += [(v, lo, hi, score, sign * cnt) for v, lo, hi, score, cnt in s.execute(
                    select(*cols, func.count(Rating.id)).where(or_(*conds)).group_by(*cols))]
        for version, lo, hi, score, cnt in rows:
            row = out.setdefault((version or "", lo, hi), {"model_version": version, "scale": [lo, hi],
                                                           "counts": {v: 0 for v in range(lo, hi + 1)}, "n": 0})
            row["counts"][int(score)] = row["counts"].get(int(score), 0) + int(cnt)
            row["n"] += int(cnt)
    out = {k: row for k, row in out.items() if row["n"]}  # a version only in a subtracted edge
    for row in out.values():
        row["mean"] = sum(k * v for k, v in row["counts"].items()) / row["n"] if row["n"] else None
        row["counts"] = {str(k): v for k, v in sorted(row["counts"].items())}
    return sorted(out.values(), key=lambda r: (r["model_version"] is None, r["model_version"] or "", r["scale"]))


def recent_agreement(db_url: str | None, max_ratings: int = 5000) -> dict[str, Any]:
    """Krippendorff's alpha (interval) over the newest `max_ratings` ratings, responses as units."""
    with read_only_session(db_url) as s:
        rows = s.execute(select(Rating.response_id, Rating.score, Rating.scale_min, Rating.scale_max)
                         .order_by(Rating.id.desc()).limit(max_ratings)).all()
    units: dict[int, list[float]] = defaultdict(list)
    for rid, score, lo, hi in rows:
        units[rid].append((score - lo) / (hi - lo))
    pairable = sum(1 for v in units.values() if len(v) >= 2)
    return {"alpha_interval": krippendorff_alpha(units, "interval"), "n_ratings": len(rows),
            "n_units_pairable": pairable}


def recent_critiques(db_url: str | None, limit: int = 20, before: int | None = None
                     ) -> tuple[list[dict[str, Any]], int | None]:
    """Ratings with a written critique, newest first: rater, score, response and prompt."""
    n = _limit(limit)
    q = (select(Rating.id, Rating.score, Rating.scale_min, Rating.scale_max, Rating.critique, Rating.created_at,
                Rater.name, Response.model_version, Response.text, Item.id, Item.prompt)
         .join(Rater, Rater.id == Rating.rater_id)
         .join(Response, Response.id == Rating.response_id)
         .join(Item, Item.id == Rating.item_id)
         .where(Rating.critique.is_not(None), Rating.critique != "")
         .order_by(Rating.id.desc()).limit(n + 1))
    if before is not None:
        q = q.where(Rating.id < before)
    with read_only_session(db_url) as s:
        rows = s.execute(q).all()
    items = [{"rating_id": r[0], "score": r[1], "scale": [r[2], r[3]], "critique": r[4],
              "at": r[5].isoformat() if r[5] else None, "rater": r[6], "model_version": r[7], "response": r[8],
              "item_id": r[9], "prompt": r[10]} for r in rows[:n]]
    return items, (items[-1]["rating_id"] if len(rows) > n and items else None)


def recent_corrections(db_url: str | None, limit: int = 20, before: int | None = None
                       ) -> tuple[list[dict[str, Any]], int | None]:
    """Corrected responses written by raters (SFT data), newest first, with the original response."""
    n = _limit(limit)
    q = (select(Correction.id, Correction.text, Correction.created_at, Rater.name, Response.model_version,
                Response.text, Item.id, Item.prompt)
         .join(Rater, Rater.id == Correction.rater_id)
         .join(Response, Response.id == Correction.response_id)
         .join(Item, Item.id == Correction.item_id)
         .order_by(Correction.id.desc()).limit(n + 1))
    if before is not None:
        q = q.where(Correction.id < before)
    with read_only_session(db_url) as s:
        rows = s.execute(q).all()
    items = [{"correction_id": r[0], "correction": r[1], "at": r[2].isoformat() if r[2] else None, "rater": r[3],
              "model_version": r[4], "response": r[5], "item_id": r[6], "prompt": r[7]} for r in rows[:n]]
    return items, (items[-1]["correction_id"] if len(rows) > n and items else None)


def projects_overview(db_url: str | None) -> list[dict[str, Any]]:
    """Every project with its progress (items, complete items, answers, skips, per-rater rows)."""
    from llmops.feedback.assignment import progress
    from llmops.feedback.projects import get_project, list_projects

    with read_only_session(db_url) as s:
        return [{"project": p, "progress": progress(s, get_project(s, p.name))} for p in list_projects(s)]


def project_detail(db_url: str | None, name: str) -> dict[str, Any]:
    """One project: settings, progress and quality (agreement per question, per rater, gold accuracy)."""
    from llmops.feedback.assignment import progress
    from llmops.feedback.projects import get_project, project_out
    from llmops.feedback.quality import project_quality

    with read_only_session(db_url) as s:
        project = get_project(s, name)
        return {"project": project_out(project), "progress": progress(s, project),
                "quality": project_quality(s, name)}

"""Read-only queries for the layers above (monitoring, the loop): quality per model, served prompts."""

from __future__ import annotations

import itertools
from collections import defaultdict
from datetime import datetime

from sqlalchemy import and_, case, distinct, func, literal, select, text, union_all

from llmops.db import session_factory
from llmops.feedback.tables import Comparison, ComparisonEntry, Item, Rating, Response


def quality_by_model(db_url: str | None, since: datetime | None = None, until: datetime | None = None) -> list[dict]:
    """Per model reference: ratings (count, mean on the raw scale, mean normalised to [0, 1]) and
    pairwise win rate against responses of *other* models (a tie is half a win).

    `since`/`until` bound when the feedback was given (created_at, half-open [since, until)).
    Responses without a model reference are grouped under ``None``. Reads the model reference each
    rating and comparison entry carries (copied from its response when written): no join to the
    responses, so the cost follows the window, not the history.
    """
    return _quality(db_url, [(since, until)])[0]


def quality_by_window(db_url: str | None, edges: list[datetime]) -> list[list[dict]]:
    """`quality_by_model` for each window [edges[i], edges[i+1]) in two queries (not two per window).

    Returns one list of rows per window, each row as `quality_by_model` gives it."""
    if len(edges) < 2 or any(b <= a for a, b in zip(edges, edges[1:])):
        raise ValueError("edges must be at least two increasing datetimes")
    return _quality(db_url, list(zip(edges, edges[1:])))


def no_jit(session) -> None:
    """PostgreSQL: no JIT compilation for the rest of this transaction's aggregates.

    The 7 one-week windows' rating aggregate crosses the default ``jit_above_cost``; measured on 1M
    ratings it ran in 459 ms with JIT (compilation, summed over the parallel workers: 589 ms) and in
    130-150 ms without. JIT pays off for long analytical queries, not for a page's aggregates."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SET LOCAL jit = off"))


def _in(col, since: datetime | None, until: datetime | None) -> list:
    conds = []
    if since is not None:
        conds.append(col >= since)
    if until is not None:
        conds.append(col < until)
    return conds


def _quality(db_url: str | None, windows: list[tuple[datetime | None, datetime | None]]) -> list[list[dict]]:
    """Ratings and comparisons per (window, model reference), aggregated in the database.

    Ratings: one indexed range per window on ``created_at`` (UNION ALL), each summed per (model,
    scale) with integer aggregates; means and normalised means are derived here, exactly (a group's
    normalised sum is ``(sum - n*min) / (max - min)``). Comparisons: every ordered pair of entries of
    one comparison whose models differ counts once for the first entry's model (a win 2, a tie 1,
    halved here), the entries read by a primary-key range bounded by the windows' comparison ids
    instead of a scan of every entry. Nothing per row reaches Python."""
    from llmops.db.engine import read_only_session

    stats: list[dict] = [defaultdict(lambda: {"n": 0, "sum": 0, "norm": 0.0, "wins2": 0, "n_pairs": 0,
                                              "n_cmp": 0}) for _ in windows]
    rating_parts = [
        select(literal(i).label("w"), Rating.model_ref, Rating.scale_min, Rating.scale_max,
               func.count(Rating.id), func.sum(Rating.score))
        .where(*_in(Rating.created_at, since, until))
        .group_by(Rating.model_ref, Rating.scale_min, Rating.scale_max)
        for i, (since, until) in enumerate(windows)
    ]
    bucket = case(*[(Comparison.created_at < until, i) for i, (_, until) in enumerate(windows[:-1])],
                  else_=len(windows) - 1) if len(windows) > 1 else literal(0)
    in_windows = (select(Comparison.id.label("id"), bucket.label("w"))
                  .where(*_in(Comparison.created_at, windows[0][0], windows[-1][1])).cte("in_windows"))
    lo = select(func.min(in_windows.c.id)).scalar_subquery()
    hi = select(func.max(in_windows.c.id)).scalar_subquery()
    entries = (
        select(in_windows.c.w, ComparisonEntry.comparison_id.label("cid"), ComparisonEntry.response_id.label("rid"),
               ComparisonEntry.model_ref.label("model"), ComparisonEntry.rank.label("rank"))
        .join(ComparisonEntry, ComparisonEntry.comparison_id == in_windows.c.id)
        .where(ComparisonEntry.comparison_id >= lo, ComparisonEntry.comparison_id <= hi)
        .cte("window_entries")
    )
    mine, theirs = entries.alias("mine"), entries.alias("theirs")
    wins2 = case((mine.c.rank < theirs.c.rank, 2), (mine.c.rank == theirs.c.rank, 1), else_=0)
    pairs_q = (
        select(mine.c.w, mine.c.model, func.count(), func.sum(wins2), func.count(distinct(mine.c.cid)))
        .select_from(mine)
        .join(theirs, and_(theirs.c.cid == mine.c.cid, theirs.c.rid != mine.c.rid,
                           theirs.c.model.is_distinct_from(mine.c.model)))  # same model on both sides says nothing
        .group_by(mine.c.w, mine.c.model)
    )
    with read_only_session(db_url) as session:  # BEGIN DEFERRED on SQLite: never waits for writers
        no_jit(session)
        for w, model, scale_min, scale_max, cnt, total in session.execute(union_all(*rating_parts)):
            st = stats[int(w)][model]
            st["n"] += int(cnt)
            st["sum"] += int(total)
            st["norm"] += (int(total) - int(cnt) * scale_min) / (scale_max - scale_min)
        for w, model, n_pairs, total, n_cmp in session.execute(pairs_q):
            stats[int(w)][model].update(n_pairs=int(n_pairs), wins2=int(total), n_cmp=int(n_cmp))
    return [_rows(w) for w in stats]


def _rows(out: dict) -> list[dict]:
    rows = [{"model": model, "n_ratings": s["n"], "mean_rating": s["sum"] / s["n"] if s["n"] else None,
             "mean_rating_normalized": s["norm"] / s["n"] if s["n"] else None,
             "win_rate": s["wins2"] / 2 / s["n_pairs"] if s["n_pairs"] else None, "n_comparisons": s["n_cmp"]}
            for model, s in out.items()]
    return sorted(rows, key=lambda r: (r["model"] is None, r["model"] or ""))


def served_prompts(db_url: str, since: datetime | None = None, limit: int = 5000,
                   until: datetime | None = None) -> list[str]:
    """Prompts the serving endpoint recorded as items in [since, until) (the newest `limit`, oldest first)."""
    query = select(Item.prompt, Item.meta).order_by(Item.id.desc()).limit(limit)
    if since is not None:
        query = query.where(Item.created_at >= since)
    if until is not None:
        query = query.where(Item.created_at < until)
    with session_factory(db_url)() as session:
        rows = session.execute(query).all()
    return [p for p, meta in reversed(rows) if (meta or {}).get("source") == "llmops.serve"]


def rated_responses(db_url: str, limit: int = 1000) -> list[dict]:
    """Rated responses, newest first: prompt, response text and the raters' mean score on [0, 1]."""
    from llmops.db.engine import read_only_session

    norm = (Rating.score - Rating.scale_min) * 1.0 / (Rating.scale_max - Rating.scale_min)
    with read_only_session(db_url) as session:
        rows = session.execute(
            select(Item.prompt, Response.text, func.avg(norm), func.count(Rating.id))
            .join(Response, Response.id == Rating.response_id)
            .join(Item, Item.id == Response.item_id)
            .group_by(Response.id, Item.prompt, Response.text)
            .order_by(Response.id.desc())
            .limit(limit)
        ).all()
    return [{"prompt": p, "response": t, "mean_score": float(m), "n_ratings": int(n)} for p, t, m, n in rows]


def compared_pairs(db_url: str, limit: int = 1000) -> list[dict]:
    """Pairs the raters ranked (better, worse), from comparisons, newest first; ties left out."""
    from llmops.db.engine import read_only_session

    with read_only_session(db_url) as session:
        rows = session.execute(
            select(Comparison.id, Item.prompt, Response.text, ComparisonEntry.rank)
            .join(ComparisonEntry, ComparisonEntry.comparison_id == Comparison.id)
            .join(Response, Response.id == ComparisonEntry.response_id)
            .join(Item, Item.id == Comparison.item_id)
            .order_by(Comparison.id.desc(), ComparisonEntry.rank)
        ).all()
    pairs: list[dict] = []
    for _, group in itertools.groupby(rows, key=lambda r: r[0]):
        members = list(group)
        for (_, prompt, a, ra), (_, _, b, rb) in itertools.combinations(members, 2):
            if ra != rb:
                better, worse = (a, b) if ra < rb else (b, a)
                pairs.append({"prompt": prompt, "better": better, "worse": worse})
        if len(pairs) >= limit:
            break
    return pairs[:limit]


def responses_by_version(db_url: str | None, since: datetime | None = None, until: datetime | None = None,
                         limit_per_version: int = 5000) -> dict[str | None, dict]:
    """Per model version (as the serving endpoint recorded it): the newest responses' texts and the
    ratings they received, bounded by when the response was created ([since, until)).

    Returns {version: {"texts": [...], "ratings": {score: count}, "scale": (min, max) | None}} for the
    output-side monitor (response length, refusal/empty rate, rating distribution).
    """
    from llmops.db.engine import read_only_session

    conds = []
    if since is not None:
        conds.append(Response.created_at >= since)
    if until is not None:
        conds.append(Response.created_at < until)
    out: dict[str | None, dict] = {}
    with read_only_session(db_url) as session:
        for version, text in session.execute(
            select(Response.model_version, Response.text).where(*conds).order_by(Response.id.desc())
        ):
            entry = out.setdefault(version, {"texts": [], "ratings": {}, "scale": None})
            if len(entry["texts"]) < limit_per_version:
                entry["texts"].append(text)
        for version, score, lo, hi, n in session.execute(
            select(Response.model_version, Rating.score, Rating.scale_min, Rating.scale_max, func.count(Rating.id))
            .join(Response, Response.id == Rating.response_id)
            .where(*conds)
            .group_by(Response.model_version, Rating.score, Rating.scale_min, Rating.scale_max)
        ):
            entry = out.setdefault(version, {"texts": [], "ratings": {}, "scale": None})
            entry["ratings"][int(score)] = entry["ratings"].get(int(score), 0) + int(n)
            entry["scale"] = (int(lo), int(hi))
    return out

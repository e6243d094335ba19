"""Read-only queries for the layers above (monitoring, the loop): quality per model, served prompts."""

from __future__ import annotations

import itertools
import math
from collections import defaultdict
from datetime import datetime

from sqlalchemy import and_, case, distinct, func, literal, or_, select, text, true, union_all

from llmops.db import session_factory
from llmops.feedback.tables import Comparison, ComparisonEntry, Item, Rating, Response, RollupRating


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


def _quality(db_url: str | None, windows: list[tuple[datetime | None, datetime | None]],
             use_rollups: bool = True) -> list[list[dict]]:
    """Ratings and comparisons per (window, model reference), aggregated in the database.

    Closed UTC days come from the daily rollups (`llmops.feedback.rollups`, rolled up here on
    first use), the rest of each window (its edges, the current day, any day not rolled up) from
    the rows (`live_ratings`, `live_pairs`; an edge day's part outside the window subtracted), all
    read in one snapshot. Both give integer
    counts and sums per (model, scale); means and normalised means are derived from the totals
    here, so a result does not depend on which part came from where (``use_rollups=False`` reads
    everything from the rows: the reference the tests compare against)."""
    from llmops.db.engine import read_only_session
    from llmops.feedback import rollups

    windows = [(rollups.utc(a), rollups.utc(b)) for a, b in windows]
    if use_rollups:
        with read_only_session(db_url) as session:
            candidates = rollups.plan(session, windows)
        rollups.ensure(db_url, {d for days in candidates for d in days})
    stats: list[dict] = [defaultdict(lambda: {"scales": defaultdict(lambda: [0, 0]), "wins2": 0, "n_pairs": 0,
                                              "n_cmp": 0}) for _ in windows]
    with read_only_session(db_url, snapshot=True) as session, session.begin():
        no_jit(session)  # on SQLite BEGIN DEFERRED: never waits for writers
        rolled: list[list] = [[] for _ in windows]
        if use_rollups:
            have = rollups.rolled_days(session, candidates)
            rolled = [[d for d in days if d in have] for days in candidates]
        plus, minus = rollups.split(windows, rolled)
        rolled_ratings = rollups.rolled_ratings(session, rolled, RollupRating.model_ref, RollupRating.scale_min,
                                                RollupRating.scale_max)
        for sign, rows in ((1, rolled_ratings), (1, live_ratings(session, plus)), (-1, live_ratings(session, minus))):
            for w, model, scale_min, scale_max, cnt, total in rows:
                acc = stats[int(w)][model]["scales"][(int(scale_min), int(scale_max))]
                acc[0] += sign * int(cnt)
                acc[1] += sign * int(total)
        for sign, rows in ((1, rollups.rolled_pairs(session, rolled)), (1, live_pairs(session, plus)),
                           (-1, live_pairs(session, minus))):
            for w, model, n_pairs, wins2, n_cmp in rows:
                st = stats[int(w)][model]
                st["n_pairs"] += sign * int(n_pairs)
                st["wins2"] += sign * int(wins2)
                st["n_cmp"] += sign * int(n_cmp)
    return [_rows(w) for w in stats]


def live_ratings(session, segments: list[tuple[int, datetime | None, datetime | None]]):
    """(segment's window, model reference, scale_min, scale_max, count, sum of scores) from the
    ratings: one indexed range on ``created_at`` per segment (UNION ALL), integer aggregates."""
    from llmops.feedback.rollups import in_range

    if not segments:
        return iter(())
    parts = [
        select(literal(w).label("w"), Rating.model_ref, Rating.scale_min, Rating.scale_max,
               func.count(Rating.id), func.sum(Rating.score))
        .where(*in_range(Rating.created_at, since, until))
        .group_by(Rating.model_ref, Rating.scale_min, Rating.scale_max)
        for w, since, until in segments
    ]
    return iter(session.execute(union_all(*parts)))


def live_pairs(session, segments: list[tuple[int, datetime | None, datetime | None]]):
    """(segment's window, model reference, ordered pairs, wins2, comparisons) from the comparisons.

    Every ordered pair of entries of one comparison whose models differ counts once for the first
    entry's model (a win 2, a tie 1), the entries read by primary-key ranges bounded by each
    segment's comparison ids instead of a scan of every entry. Segments must not overlap."""
    from llmops.feedback.rollups import in_range

    if not segments:
        return iter(())
    ranges = [(w, and_(true(), *in_range(Comparison.created_at, since, until))) for w, since, until in segments]
    bucket = case(*[(cond, w) for w, cond in ranges[:-1]], else_=ranges[-1][0]) if len(ranges) > 1 \
        else literal(ranges[0][0])
    in_windows = (select(Comparison.id.label("id"), bucket.label("w"))
                  .where(or_(*[cond for _, cond in ranges])).cte("in_windows"))
    # One primary-key range of entries per segment (its comparisons' lowest to highest id, read
    # first through the created_at index): the segments of windows read partly from the rollups
    # lie days apart, and one range over all of them would read every entry in between.
    seg = case(*[(cond, i) for i, (_, cond) in enumerate(ranges)], else_=None)
    bounds = session.execute(select(seg, func.min(Comparison.id), func.max(Comparison.id))
                             .where(or_(*[cond for _, cond in ranges])).group_by(seg)).all()
    if not bounds:
        return iter(())
    id_ranges = [ComparisonEntry.comparison_id.between(lo, hi) for _, lo, hi in bounds]
    entries = (
        select(in_windows.c.w, ComparisonEntry.comparison_id.label("cid"), ComparisonEntry.response_id.label("rid"),
               ComparisonEntry.model_ref.label("model"), ComparisonEntry.rank.label("rank"))
        .join(ComparisonEntry, ComparisonEntry.comparison_id == in_windows.c.id)
        .where(or_(*id_ranges))
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
    return iter(session.execute(pairs_q))


def _rows(out: dict) -> list[dict]:
    rows = []
    for model, s in out.items():
        s["scales"] = {k: v for k, v in s["scales"].items() if v[0]}  # what a subtracted edge left empty
        if not s["scales"] and not s["n_pairs"] and not s["n_cmp"]:
            continue
        n = sum(c for c, _ in s["scales"].values())
        total = sum(t for _, t in s["scales"].values())
        # per scale group from its integer totals, summed exactly: independent of where the totals came from
        norm = math.fsum((t - c * lo) / (hi - lo) for (lo, hi), (c, t) in s["scales"].items())
        rows.append({"model": model, "n_ratings": n, "mean_rating": total / n if n else None,
                     "mean_rating_normalized": norm / n if n else None,
                     "win_rate": s["wins2"] / 2 / s["n_pairs"] if s["n_pairs"] else None,
                     "n_comparisons": s["n_cmp"]})
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

"""Read-only queries for the layers above (monitoring, the loop): quality per model, served prompts."""

from __future__ import annotations

import itertools
from collections import defaultdict
from datetime import datetime

from sqlalchemy import case, func, select

from llmops.db import session_factory
from llmops.feedback.tables import Comparison, ComparisonEntry, Item, Rating, Response


def quality_by_model(db_url: str | None, since: datetime | None = None, until: datetime | None = None) -> list[dict]:
    """Per model reference: ratings (count, mean on the raw scale, mean normalised to [0, 1]) and
    pairwise win rate against responses of *other* models (a tie is half a win).

    `since`/`until` bound when the feedback was given (created_at, half-open [since, until)).
    Responses without a model reference are grouped under ``None``.
    """
    from llmops.db.engine import read_only_session

    def window(col):
        conds = []
        if since is not None:
            conds.append(col >= since)
        if until is not None:
            conds.append(col < until)
        return conds

    out: dict[str | None, dict] = defaultdict(
        lambda: {"n_ratings": 0, "mean_rating": None, "mean_rating_normalized": None, "wins": 0.0, "n_pairs": 0, "cmp": set()}
    )
    with read_only_session(db_url) as session:  # BEGIN DEFERRED on SQLite: never waits for writers
        norm = (Rating.score - Rating.scale_min) * 1.0 / (Rating.scale_max - Rating.scale_min)
        for model, n, mean, mean_norm in session.execute(
            select(Response.model_ref, func.count(Rating.id), func.avg(Rating.score), func.avg(norm))
            .join(Response, Response.id == Rating.response_id)
            .where(*window(Rating.created_at))
            .group_by(Response.model_ref)
        ):
            out[model].update(n_ratings=int(n), mean_rating=float(mean), mean_rating_normalized=float(mean_norm))
        entries = session.execute(
            select(Comparison.id, Response.model_ref, ComparisonEntry.rank)
            .join(ComparisonEntry, ComparisonEntry.comparison_id == Comparison.id)
            .join(Response, Response.id == ComparisonEntry.response_id)
            .where(*window(Comparison.created_at))
            .order_by(Comparison.id)
        ).all()
    for cid, group in itertools.groupby(entries, key=lambda e: e[0]):
        _count_pairs(out, cid, [(m, r) for _, m, r in group])
    return _rows(out)


def quality_by_window(db_url: str | None, edges: list[datetime]) -> list[list[dict]]:
    """`quality_by_model` for each window [edges[i], edges[i+1]) in two queries (not two per window).

    Returns one list of rows per window, each row as `quality_by_model` gives it."""
    from llmops.db.engine import read_only_session

    if len(edges) < 2 or any(b <= a for a, b in zip(edges, edges[1:])):
        raise ValueError("edges must be at least two increasing datetimes")
    n = len(edges) - 1

    def bucket(col):
        return case(*[(col < e, i) for i, e in enumerate(edges[1:-1])], else_=n - 1)

    stats: list[dict] = [defaultdict(lambda: {"n_ratings": 0, "mean_rating": None, "mean_rating_normalized": None,
                                              "wins": 0.0, "n_pairs": 0, "cmp": set()}) for _ in range(n)]
    in_range = (lambda col: (col >= edges[0]) & (col < edges[-1]))
    with read_only_session(db_url) as session:
        norm = (Rating.score - Rating.scale_min) * 1.0 / (Rating.scale_max - Rating.scale_min)
        b = bucket(Rating.created_at).label("b")
        for w, model, cnt, mean, mean_norm in session.execute(
            select(b, Response.model_ref, func.count(Rating.id), func.avg(Rating.score), func.avg(norm))
            .join(Response, Response.id == Rating.response_id)
            .where(in_range(Rating.created_at))
            .group_by(b, Response.model_ref)
        ):
            stats[int(w)][model].update(n_ratings=int(cnt), mean_rating=float(mean), mean_rating_normalized=float(mean_norm))
        cb = bucket(Comparison.created_at).label("b")
        entries = session.execute(
            select(Comparison.id, cb, Response.model_ref, ComparisonEntry.rank)
            .join(ComparisonEntry, ComparisonEntry.comparison_id == Comparison.id)
            .join(Response, Response.id == ComparisonEntry.response_id)
            .where(in_range(Comparison.created_at))
            .order_by(Comparison.id)
        ).all()
    for cid, group in itertools.groupby(entries, key=lambda e: e[0]):
        members = list(group)
        _count_pairs(stats[int(members[0][1])], cid, [(m, r) for _, _, m, r in members])
    return [_rows(w) for w in stats]


def _count_pairs(out: dict, cid: int, members: list[tuple]) -> None:
    """Wins of each model against *other* models within one comparison (a tie is half a win)."""
    for (ma, ra), (mb, rb) in itertools.combinations(members, 2):
        if ma == mb:
            continue  # same model on both sides says nothing about the model
        for me, mine, theirs in ((ma, ra, rb), (mb, rb, ra)):
            stats = out[me]
            stats["n_pairs"] += 1
            stats["wins"] += 1.0 if mine < theirs else 0.5 if mine == theirs else 0.0
            stats["cmp"].add(cid)


def _rows(out: dict) -> list[dict]:
    rows = [{"model": model, "n_ratings": s["n_ratings"], "mean_rating": s["mean_rating"],
             "mean_rating_normalized": s["mean_rating_normalized"],
             "win_rate": s["wins"] / s["n_pairs"] if s["n_pairs"] else None, "n_comparisons": len(s["cmp"])}
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

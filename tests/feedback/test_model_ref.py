"""Ratings and comparison entries carry their response's model reference (feedback_0004).

The migration backfills existing rows, the database refuses a copy that differs from the response,
every write path sets it, and the per-model aggregates that now read it return what the old
join-to-responses queries returned.
"""

from __future__ import annotations

import math
import random
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError


def _engine(url: str) -> sa.Engine:
    from llmops.db import get_engine

    return get_engine(url)


def test_upgrade_from_feedback_0003_backfills_existing_rows_and_downgrades(db_url):
    from alembic import command

    from llmops.db.engine import alembic_config, upgrade
    from llmops.db.migrate import schema_state

    command.upgrade(alembic_config(db_url), "feedback_0003")
    now = datetime.now(timezone.utc)
    with _engine(db_url).begin() as c:
        c.execute(sa.text("INSERT INTO feedback_raters (id, name, created_at) VALUES (1, 'r1', :t), (2, 'r2', :t)"),
                  {"t": now})
        c.execute(sa.text("INSERT INTO feedback_items (id, prompt, scale_min, scale_max, created_at) "
                          "VALUES (1, 'p', 1, 5, :t)"), {"t": now})
        c.execute(sa.text(
            "INSERT INTO feedback_responses (id, item_id, position, text, model_ref, model_version, created_at) "
            "VALUES (1, 1, 0, 'a', 'registry:m@prod', 'm/3', :t), (2, 1, 1, 'b', 'openai:x', NULL, :t), "
            "(3, 1, 2, 'c', NULL, NULL, :t)"), {"t": now})
        c.execute(sa.text(
            "INSERT INTO feedback_ratings (id, response_id, item_id, scale_min, scale_max, rater_id, score, created_at) "
            "VALUES (1, 1, 1, 1, 5, 1, 4, :t), (2, 2, 1, 1, 5, 1, 2, :t), (3, 3, 1, 1, 5, 1, 3, :t), "
            "(4, 1, 1, 1, 5, 2, 5, :t)"), {"t": now})
        c.execute(sa.text("INSERT INTO feedback_comparisons (id, item_id, rater_id, kind, response_set, created_at) "
                          "VALUES (1, 1, 1, 'pair', '1,2', :t)"), {"t": now})
        c.execute(sa.text("INSERT INTO feedback_comparison_entries (comparison_id, response_id, item_id, rank) "
                          "VALUES (1, 1, 1, 1), (1, 2, 1, 2)"))
    upgrade(db_url)
    assert schema_state(db_url).up_to_date
    with _engine(db_url).connect() as c:
        ratings = c.execute(sa.text("SELECT id, model_ref, model_version FROM feedback_ratings ORDER BY id")).all()
        entries = c.execute(sa.text("SELECT response_id, model_ref, model_version FROM feedback_comparison_entries "
                                    "ORDER BY response_id")).all()
        n_items = c.execute(sa.text("SELECT count(*) FROM feedback_ratings")).scalar_one()
    assert [tuple(r) for r in ratings] == [(1, "registry:m@prod", "m/3"), (2, "openai:x", None), (3, None, None),
                                           (4, "registry:m@prod", "m/3")]
    assert [tuple(e) for e in entries] == [(1, "registry:m@prod", "m/3"), (2, "openai:x", None)]
    assert n_items == 4  # rebuilding the tables (SQLite) lost nothing
    command.downgrade(alembic_config(db_url), "feedback@feedback_0003")
    with _engine(db_url).connect() as c:
        assert "model_ref" not in {col["name"] for col in sa.inspect(c).get_columns("feedback_ratings")}
        assert c.execute(sa.text("SELECT count(*) FROM feedback_ratings")).scalar_one() == 4
    upgrade(db_url)
    with _engine(db_url).connect() as c:
        assert c.execute(sa.text("SELECT model_version FROM feedback_ratings WHERE id = 4")).scalar_one() == "m/3"


def test_the_feedback_migrations_match_the_tables(db_url):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    import llmops.feedback.tables  # noqa: F401 - registers the tables on Base
    from llmops.db import upgrade
    from llmops.db.base import Base

    upgrade(db_url)
    with _engine(db_url).connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
    assert [d for d in diff if "feedback_" in repr(d)] == []


def test_every_write_path_copies_the_model_reference_and_the_database_pins_it(db_url):
    from llmops.db import session_factory
    from llmops.feedback.project_schemas import AnswerIn
    from llmops.feedback.answers import submit_answer
    from llmops.feedback.projects import create_project
    from llmops.feedback.project_schemas import ProjectIn
    from llmops.feedback.schemas import RatingIn
    from llmops.feedback.store import FeedbackStore, add_rating, bulk

    fb = FeedbackStore(db_url)
    r1, r2, r3 = fb.rater("r1"), fb.rater("r2"), fb.rater("r3")
    a = fb.create_item("p", [{"text": "a", "model": "registry:m@prod", "model_version": "m/1"},
                             {"text": "b", "model": "registry:m@canary", "model_version": "m/2"},
                             {"text": "c"}])
    ra, rb, rc = a.response_ids
    fb.add_rating(ra, 4, r1)  # the in-process API (the serving endpoint's ratings)
    with session_factory(db_url)() as s, s.begin():  # the bulk endpoint's path
        out = bulk(s, [RatingIn(response_id=rb, score=2), RatingIn(response_id=rc, score=3)],
                   lambda s_, r: add_rating(s_, r, r1))
        assert all(isinstance(x, int) for x in out)
    fb.add_comparison({"item_id": a.item_id, "ranking": [rb, ra, rc]}, r2)
    with session_factory(db_url)() as s, s.begin():  # a project queue answer
        create_project(s, ProjectIn(name="proj", questions=[{"name": "q", "type": "rating", "required": True}]))
    b = fb.create_item("p2", [{"text": "d", "model": "registry:m@prod", "model_version": "m/1"},
                              {"text": "e", "model": "registry:m@canary", "model_version": "m/2"}], project="proj")
    with session_factory(db_url)() as s, s.begin():
        answer = submit_answer(s, "proj", b.item_id, AnswerIn(ratings=[{"response_id": b.response_ids[0], "score": 5},
                                                                       {"response_id": b.response_ids[1], "score": 1}],
                                                              comparison={"ranking": list(b.response_ids)}), r3)
        assert answer.n_failed == 0
    with _engine(db_url).connect() as c:
        pairs = c.execute(sa.text(
            "SELECT count(*), sum(CASE WHEN (t.model_ref = r.model_ref OR (t.model_ref IS NULL AND r.model_ref IS NULL))"
            " AND (t.model_version = r.model_version OR (t.model_version IS NULL AND r.model_version IS NULL))"
            " THEN 1 ELSE 0 END) FROM feedback_ratings t JOIN feedback_responses r ON r.id = t.response_id")).one()
        entries = c.execute(sa.text(
            "SELECT count(*), sum(CASE WHEN (t.model_ref = r.model_ref OR (t.model_ref IS NULL AND r.model_ref IS NULL))"
            " AND (t.model_version = r.model_version OR (t.model_version IS NULL AND r.model_version IS NULL))"
            " THEN 1 ELSE 0 END) FROM feedback_comparison_entries t JOIN feedback_responses r ON r.id = t.response_id"
        )).one()
    assert tuple(pairs) == (5, 5) and tuple(entries) == (5, 5)
    # A copy that differs from its response is refused by the database itself (composite foreign key) ...
    with pytest.raises(IntegrityError), _engine(db_url).begin() as c:
        c.execute(sa.text(
            "INSERT INTO feedback_ratings (response_id, item_id, scale_min, scale_max, rater_id, score, created_at, "
            "model_ref, model_version) VALUES (:r, :i, 1, 5, :who, 3, :t, 'registry:m@prod', 'm/999')"),
            {"r": ra, "i": a.item_id, "who": r3, "t": datetime.now(timezone.utc)})
    # ... and follows its response when an admin corrects the response's reference.
    with _engine(db_url).begin() as c:
        c.execute(sa.text("UPDATE feedback_responses SET model_version = 'm/1b' WHERE id = :r"), {"r": ra})
    with _engine(db_url).connect() as c:
        assert c.execute(sa.text("SELECT model_version FROM feedback_ratings WHERE response_id = :r"),
                         {"r": ra}).scalar_one() == "m/1b"
        assert c.execute(sa.text("SELECT model_version FROM feedback_comparison_entries WHERE response_id = :r"),
                         {"r": ra}).scalar_one() == "m/1b"


# The queries the aggregates ran before feedback_0004: every rating joined to its response, pairs counted in Python.
def _count_pairs(out: dict, cid: int, members: list[tuple]) -> None:
    import itertools

    for (ma, ra), (mb, rb) in itertools.combinations(members, 2):
        if ma == mb:
            continue
        for me, mine, theirs in ((ma, ra, rb), (mb, rb, ra)):
            out[me]["n_pairs"] += 1
            out[me]["wins"] += 1.0 if mine < theirs else 0.5 if mine == theirs else 0.0
            out[me]["cmp"].add(cid)


def _old_quality(url: str, since: datetime | None, until: datetime | None) -> list[dict]:
    from collections import defaultdict
    import itertools

    from sqlalchemy import func, select

    from llmops.feedback.tables import Comparison, ComparisonEntry, Rating, Response

    def window(col):
        return [c for c in ((col >= since) if since else None, (col < until) if until else None) if c is not None]

    out: dict = defaultdict(lambda: {"n_ratings": 0, "mean_rating": None, "mean_rating_normalized": None,
                                     "wins": 0.0, "n_pairs": 0, "cmp": set()})
    norm = (Rating.score - Rating.scale_min) * 1.0 / (Rating.scale_max - Rating.scale_min)
    with _engine(url).connect() as s:
        for model, n, mean, mean_norm in s.execute(
                select(Response.model_ref, func.count(Rating.id), func.avg(Rating.score), func.avg(norm))
                .join(Response, Response.id == Rating.response_id).where(*window(Rating.created_at))
                .group_by(Response.model_ref)):
            out[model].update(n_ratings=int(n), mean_rating=float(mean), mean_rating_normalized=float(mean_norm))
        entries = s.execute(
            select(Comparison.id, Response.model_ref, ComparisonEntry.rank)
            .join(ComparisonEntry, ComparisonEntry.comparison_id == Comparison.id)
            .join(Response, Response.id == ComparisonEntry.response_id)
            .where(*window(Comparison.created_at)).order_by(Comparison.id)).all()
    for cid, group in itertools.groupby(entries, key=lambda e: e[0]):
        _count_pairs(out, cid, [(m, r) for _, m, r in group])
    rows = [{"model": m, "n_ratings": v["n_ratings"], "mean_rating": v["mean_rating"],
             "mean_rating_normalized": v["mean_rating_normalized"],
             "win_rate": v["wins"] / v["n_pairs"] if v["n_pairs"] else None, "n_comparisons": len(v["cmp"])}
            for m, v in out.items()]
    return sorted(rows, key=lambda r: (r["model"] is None, r["model"] or ""))


def _old_distribution(url: str, since: datetime) -> dict:
    from sqlalchemy import func, select

    from llmops.feedback.tables import Rating, Response

    with _engine(url).connect() as s:
        return {tuple(r[:4]): int(r[4]) for r in s.execute(
            select(Response.model_version, Rating.scale_min, Rating.scale_max, Rating.score, func.count(Rating.id))
            .join(Response, Response.id == Rating.response_id).where(Rating.created_at >= since)
            .group_by(Response.model_version, Rating.scale_min, Rating.scale_max, Rating.score))}


def _same(new: list[dict], old: list[dict]) -> None:
    assert [r["model"] for r in new] == [r["model"] for r in old]
    for a, b in zip(new, old):
        assert a["n_ratings"] == b["n_ratings"] and a["n_comparisons"] == b["n_comparisons"], (a, b)
        for key in ("mean_rating", "mean_rating_normalized", "win_rate"):
            assert (a[key] is None) == (b[key] is None), (key, a, b)
            if a[key] is not None:
                assert math.isclose(a[key], b[key], rel_tol=1e-9), (key, a, b)


def test_aggregates_return_what_the_join_based_queries_returned(db_url):
    from llmops.feedback import dashboard
    from llmops.feedback.queries import quality_by_model, quality_by_window
    from llmops.feedback.store import FeedbackStore

    rng = random.Random(7)
    fb = FeedbackStore(db_url)
    raters = [fb.rater(f"r{i}") for i in range(4)]
    models = [("registry:m@prod", "m/1"), ("registry:m@prod", "m/2"), ("registry:m@canary", "m/3"), (None, None)]
    for k in range(30):
        picked = rng.sample(models, 3)
        scale = (1, 5) if k % 3 else (0, 10)
        created = fb.create_item(f"p{k}", [{"text": f"t{j}", "model": m, "model_version": v}
                                           for j, (m, v) in enumerate(picked)], scale=scale)
        for rid in rng.sample(raters, 3):
            for resp in created.response_ids:
                fb.add_rating(resp, rng.randint(*scale), rid)
        ids = list(created.response_ids)
        rng.shuffle(ids)
        cmp = {"item_id": created.item_id, "ranking": ids} if k % 4 else {"item_id": created.item_id, "tie": ids[:2]}
        fb.add_comparison(cmp, raters[k % 4])
    # Spread the feedback over 30 days so windows split it.
    now = datetime.now(timezone.utc)
    with _engine(db_url).begin() as c:
        for table in ("feedback_ratings", "feedback_comparisons"):
            ids = [r[0] for r in c.execute(sa.text(f"SELECT id FROM {table} ORDER BY id"))]
            for i in ids:
                c.execute(sa.text(f"UPDATE {table} SET created_at = :t WHERE id = :i"),
                          {"t": now - timedelta(hours=rng.uniform(0, 24 * 30)), "i": i})
    for since, until in ((None, None), (now - timedelta(days=7), None), (now - timedelta(days=20), now - timedelta(days=3))):
        _same(quality_by_model(db_url, since, until), _old_quality(db_url, since, until))
    edges = [now - timedelta(days=d) for d in (28, 21, 14, 7, 0)]
    for (a, b), rows in zip(zip(edges, edges[1:]), quality_by_window(db_url, edges)):
        _same(rows, _old_quality(db_url, a, b))
    for days in (7, 30):
        new = {(d["model_version"], *d["scale"], int(score)): n
               for d in dashboard.rating_distribution(db_url, timedelta(days=days), now=now)
               for score, n in d["counts"].items() if n}
        assert new == _old_distribution(db_url, now - timedelta(days=days)) and new

"""Daily rollups (feedback_0005): the public aggregates return exactly what the rows say.

Seeded across days on both databases; windows that start and end mid-day; a row committed after
its day closed; deletions and a cascaded model-reference update (the triggers drop the affected
days); ties, 3-way rankings and responses without a model reference. The reference is the live
computation over the rows (`queries._quality(..., use_rollups=False)`).
"""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta, timezone

import sqlalchemy as sa

BASE = datetime(2026, 3, 1, tzinfo=timezone.utc)
EDGES = [BASE + timedelta(hours=5), BASE + timedelta(days=1, hours=7), BASE + timedelta(days=3),
         BASE + timedelta(days=4, hours=23, minutes=59), BASE + timedelta(days=7)]


def _seed(db_url: str) -> dict:
    from llmops.db import session_factory
    from llmops.feedback.store import FeedbackStore
    from llmops.feedback.tables import Comparison, ComparisonEntry, Rating

    fb = FeedbackStore(db_url)
    raters = [fb.rater(f"r{i}") for i in range(12)]
    a = fb.create_item("a", [{"text": "a1", "model": "m@a", "model_version": "a/1"},
                             {"text": "a2", "model": "m@b", "model_version": "b/1"},
                             {"text": "a3"}])  # no model reference
    b = fb.create_item("b", [{"text": "b1", "model": "m@a", "model_version": "a/2"},
                             {"text": "b2", "model": "m@b", "model_version": "b/1"},
                             {"text": "b3", "model": "m@c", "model_version": "c/1"}], scale=(0, 10))
    refs = {r: (m, v) for r, m, v in [(a.response_ids[0], "m@a", "a/1"), (a.response_ids[1], "m@b", "b/1"),
                                      (a.response_ids[2], None, None), (b.response_ids[0], "m@a", "a/2"),
                                      (b.response_ids[1], "m@b", "b/1"), (b.response_ids[2], "m@c", "c/1")]}
    items = {**{r: (a.item_id, 1, 5) for r in a.response_ids}, **{r: (b.item_id, 0, 10) for r in b.response_ids}}
    rng = random.Random(7)
    combos = [(resp, rater) for resp in refs for rater in raters]
    rng.shuffle(combos)
    with session_factory(db_url)() as s, s.begin():
        for resp, rater in combos[:60]:
            item, lo, hi = items[resp]
            s.add(Rating(response_id=resp, item_id=item, scale_min=lo, scale_max=hi, rater_id=rater,
                         score=rng.randint(lo, hi), model_ref=refs[resp][0], model_version=refs[resp][1],
                         created_at=BASE + timedelta(minutes=rng.randrange(6 * 24 * 60))))
        for i, rater in enumerate(raters):
            for item in (a, b):
                ranks = rng.choice([[1, 2, 3], [1, 1, 2], [2, 1, 1], [1, 1, 1], [3, 1, 2]])
                cmp = Comparison(item_id=item.item_id, rater_id=rater, kind="ranking",
                                 response_set=",".join(map(str, sorted(item.response_ids))),
                                 created_at=BASE + timedelta(minutes=rng.randrange(6 * 24 * 60)))
                cmp.entries = [ComparisonEntry(response_id=r, item_id=item.item_id, rank=k, model_ref=refs[r][0],
                                               model_version=refs[r][1]) for r, k in zip(item.response_ids, ranks)]
                s.add(cmp)
    return {"a": a, "b": b, "raters": raters, "refs": refs}


def _distribution(db_url: str, since: datetime | None) -> list[dict]:
    """`dashboard.rating_distribution` computed from the ratings alone: the reference."""
    from collections import Counter

    with _engine(db_url).connect() as c:
        rows = c.execute(sa.text("SELECT model_version, scale_min, scale_max, score, created_at FROM feedback_ratings"))
        counts = Counter()
        for version, lo, hi, score, at in rows:
            at = at if isinstance(at, datetime) else datetime.fromisoformat(at)
            if since is None or at.replace(tzinfo=at.tzinfo or timezone.utc) >= since:
                counts[(version, lo, hi, score)] += 1
    out: dict = {}
    for (version, lo, hi, score), n in counts.items():
        row = out.setdefault((version or "", lo, hi), {"model_version": version, "scale": [lo, hi],
                                                       "counts": {v: 0 for v in range(lo, hi + 1)}, "n": 0})
        row["counts"][score] += n
        row["n"] += n
    for row in out.values():
        row["mean"] = sum(k * v for k, v in row["counts"].items()) / row["n"]
        row["counts"] = {str(k): v for k, v in sorted(row["counts"].items())}
    return sorted(out.values(), key=lambda r: (r["model_version"] is None, r["model_version"] or "", r["scale"]))


def _all(db_url: str, live: bool) -> list:
    """Every aggregate the rollups serve, from the rollups (live=False) or from the rows alone."""
    from llmops.feedback import dashboard, queries

    mid = EDGES[1]  # a window starting mid-day
    now = datetime.now(timezone.utc)
    if live:
        return [_distribution(db_url, None), _distribution(db_url, mid),
                queries._quality(db_url, list(zip(EDGES, EDGES[1:])), use_rollups=False),
                queries._quality(db_url, [(None, None)], use_rollups=False)[0],
                queries._quality(db_url, [(EDGES[1], None)], use_rollups=False)[0],
                queries._quality(db_url, [(None, EDGES[3])], use_rollups=False)[0]]
    return [dashboard.rating_distribution(db_url, None), dashboard.rating_distribution(db_url, now - mid, now),
            queries.quality_by_window(db_url, EDGES), queries.quality_by_model(db_url),
            queries.quality_by_model(db_url, since=EDGES[1]), queries.quality_by_model(db_url, until=EDGES[3])]


def _days(db_url: str) -> set[date]:
    from llmops.db import session_factory
    from llmops.feedback.tables import RollupDay

    with session_factory(db_url)() as s:
        return set(s.scalars(sa.select(RollupDay.day).where(RollupDay.day <= date(2026, 3, 6))))


def _days_of(db_url: str, where: str, **params) -> set[date]:
    """The UTC days of the ratings and comparisons a condition on their response ids selects."""
    from llmops.feedback.rollups import utc

    with _engine(db_url).connect() as c:
        stamps = c.execute(sa.text(
            f"SELECT created_at FROM feedback_ratings WHERE {where} UNION ALL SELECT c.created_at FROM "
            f"feedback_comparisons c JOIN feedback_comparison_entries e ON e.comparison_id = c.id "
            f"WHERE e.{where}"), params).scalars().all()
    return {utc(t if isinstance(t, datetime) else datetime.fromisoformat(t)).date() for t in stamps}


def _engine(db_url: str):
    from llmops.db import get_engine

    return get_engine(db_url)


def test_rollups_give_the_live_numbers_through_late_commits_deletions_and_updates(db_url):
    from llmops.db import session_factory
    from llmops.feedback import rollups
    from llmops.feedback.tables import Rating, RollupRating

    seeded = _seed(db_url)
    live = _all(db_url, live=True)
    assert _days(db_url) == set()
    # Day 2 closed 30 minutes ago: inside the safety margin, so only days 0 and 1 are rolled up.
    assert rollups.rollup(db_url, now=BASE + timedelta(days=3, minutes=30)) == 2
    assert _days(db_url) == {date(2026, 3, 1), date(2026, 3, 2)}
    assert _all(db_url, live=False) == live  # rolls up days 2-5 on the way
    assert _days(db_url) == {date(2026, 3, d) for d in range(1, 7)}
    with session_factory(db_url)() as s:
        assert s.scalar(sa.select(sa.func.sum(RollupRating.n))) == 60

    # A rating stamped in day 2 but committed after day 2 was rolled up would be lost: the margin
    # is what prevents it. Here it commits after day 2 closed, before the margin ended (day 2 not
    # rolled up yet: the store is reset to that moment by dropping days 2 on).
    with session_factory(db_url)() as s, s.begin():
        s.execute(sa.text("DELETE FROM feedback_rollup_days WHERE day >= :d"), {"d": date(2026, 3, 3)})
    a, refs, raters = seeded["a"], seeded["refs"], seeded["raters"]
    resp = a.response_ids[2]  # the response without a model reference
    with session_factory(db_url)() as s, s.begin():
        taken = set(s.scalars(sa.select(Rating.rater_id).where(Rating.response_id == resp)))
        rater = next(r for r in raters if r not in taken)
        s.add(Rating(response_id=resp, item_id=a.item_id, scale_min=1, scale_max=5, rater_id=rater, score=5,
                     model_ref=None, model_version=None, created_at=BASE + timedelta(days=2, hours=23, minutes=59)))
    live_late = _all(db_url, live=True)
    assert live_late != live
    assert _all(db_url, live=False) == live_late

    # Deleting a rating of a rolled-up day drops that day's rollup (trigger), and only that day's.
    with session_factory(db_url)() as s, s.begin():
        victim = s.execute(sa.select(Rating.id, Rating.created_at).where(Rating.created_at < BASE + timedelta(days=2))
                           .order_by(Rating.id)).first()
        s.execute(sa.delete(Rating).where(Rating.id == victim[0]))
    gone = rollups.utc(victim[1]).date()
    assert _days(db_url) == {date(2026, 3, d) for d in range(1, 7)} - {gone}
    live_deleted = _all(db_url, live=True)
    assert _all(db_url, live=False) == live_deleted != live_late

    # A response's model reference corrected: the cascade updates its ratings and entries (triggers fire).
    assert _all(db_url, live=False)  # everything rolled up again
    b2 = seeded["b"].response_ids[1]
    touched = _days_of(db_url, "response_id = :r", r=b2)
    assert touched and _days(db_url) >= touched
    with session_factory(db_url)() as s, s.begin():
        s.execute(sa.text("UPDATE feedback_responses SET model_ref = 'm@b2' WHERE id = :r"), {"r": b2})
    assert _days(db_url) == {date(2026, 3, d) for d in range(1, 7)} - touched
    assert _all(db_url, live=True) == _all(db_url, live=False)

    # Deleting an item cascades to its responses, ratings, comparisons and entries.
    assert _all(db_url, live=False)  # everything rolled up again
    touched = _days_of(db_url, "item_id = :i", i=a.item_id)
    with session_factory(db_url)() as s, s.begin():
        s.execute(sa.text("DELETE FROM feedback_items WHERE id = :i"), {"i": a.item_id})
    assert _days(db_url) == {date(2026, 3, d) for d in range(1, 7)} - touched
    after = _all(db_url, live=True)
    assert _all(db_url, live=False) == after
    assert {r["model"] for r in after[3]} == {"m@a", "m@b2", "m@c"}


def test_a_window_reads_whole_days_and_edge_days_mostly_inside_it_from_the_rollups():
    from llmops.feedback import rollups

    first, cut = date(2026, 3, 1), date(2026, 3, 6)
    # 05:00 day 0 .. 07:00 day 1: day 0 is 19 h inside (its 5 h before subtracted), day 1 only 7 h.
    assert rollups.complete_days(EDGES[0], EDGES[1], first, cut) == [date(2026, 3, 1)]
    assert rollups.complete_days(EDGES[1], EDGES[3], first, cut) == [date(2026, 3, d) for d in range(2, 6)]
    assert rollups.complete_days(BASE, BASE + timedelta(days=2), first, cut) == [date(2026, 3, 1), date(2026, 3, 2)]
    # both edges inside one day: never from the rollups, however long
    assert rollups.complete_days(BASE + timedelta(hours=1), BASE + timedelta(hours=23), first, cut) == []
    assert rollups.complete_days(None, None, first, cut) == [date(2026, 3, d) for d in range(1, 6)]
    assert rollups.complete_days(None, None, None, cut) == []
    assert rollups.cutoff_day(datetime(2026, 3, 6, 0, 59, tzinfo=timezone.utc)) == date(2026, 3, 5)
    assert rollups.cutoff_day(datetime(2026, 3, 6, 1, 0, tzinfo=timezone.utc)) == date(2026, 3, 6)
    plus, minus = rollups.split([(EDGES[1], EDGES[3])], [[date(2026, 3, d) for d in range(2, 6)]])
    assert plus == [] and minus == [(0, BASE + timedelta(days=1), EDGES[1]), (0, EDGES[3], BASE + timedelta(days=5))]
    plus, minus = rollups.split([(EDGES[1], None)], [[date(2026, 3, 3)]])  # day 2 (Mar 2) not rolled up
    assert plus == [(0, EDGES[1], BASE + timedelta(days=2)), (0, BASE + timedelta(days=3), None)] and minus == []


def test_the_rollup_command_rolls_up_complete_days_once(tmp_path, capsys):
    from llmops.cli.main import main

    url = f"sqlite:///{tmp_path / 'llmops.db'}"
    _seed(url)
    assert main(["feedback", "rollup", "--db", url]) == 0
    first = capsys.readouterr().out
    assert first.startswith("rolled up ") and int(first.split()[2]) >= 6  # March 1-6, then empty days to now
    assert _days(url) == {date(2026, 3, d) for d in range(1, 7)}
    assert main(["feedback", "rollup", "--db", url]) == 0
    assert capsys.readouterr().out.startswith("rolled up 0 days")

"""Daily rollups of the per-model aggregates: complete past UTC days summed once, read many times.

`queries.quality_by_model` / `quality_by_window` and `dashboard.rating_distribution` sum every
rating and comparison of their windows; at a million ratings the monitoring overview's seven
1-week windows read ~270k ratings and 27k comparisons per page view. Here each complete UTC day is
summed once into ``feedback_rollup_*`` (migration feedback_0005); a window then reads its complete
days from the rollups and only its edges and the days not rolled up from the rows themselves, so
the result is the same integers, whichever part came from where. An edge day mostly inside a
window is read as its rollup minus the rows of its part outside the window (integer counts
subtract exactly), so a window reads at most half a day of rows at each edge.

Why it stays correct without touching the rating write path:

- lazily on read (`ensure`), or ahead of time (`llmops feedback rollup`), only days that closed
  more than `SAFETY_MARGIN` ago are rolled up. A row is stamped (``created_at``) before its
  transaction commits; transactions are bounded by the PostgreSQL statement/idle timeouts (30 s,
  60 s) and SQLite serialises writers, so a row committed after its day closed ("late") is
  committed long before the margin ends and lands in the rollup;
- database triggers (feedback_0005) delete a day's rollup on every DELETE, and every UPDATE of an
  aggregated column, of its ratings, comparisons or comparison entries (erasure, item deletion,
  foreign-key cascades, a response's model reference changed): that day is read live again and
  rolled up anew on the next read;
- a rollup takes ``SHARE ROW EXCLUSIVE`` on ``feedback_rollup_days`` (PostgreSQL) before reading
  the rows, so a concurrent delete's trigger either committed before (its effect is read) or waits
  until the rollup committed (and then deletes it); readers read the rolled days and the rows in
  one snapshot.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from datetime import date, datetime, time, timedelta, timezone

from sqlalchemy import and_, case, func, insert, literal, or_, select, text, union_all
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from llmops.feedback.tables import (
    Comparison,
    Rating,
    RollupComparison,
    RollupDay,
    RollupRating,
)

log = logging.getLogger(__name__)

SAFETY_MARGIN = timedelta(hours=1)  # a day is rolled up only this long after it closed (late commits)
DAY = timedelta(days=1)
# Days per rollup transaction: ~0.2 s at 5,500 ratings a day, so a delete or update of ratings,
# whose trigger waits for the rollup's table lock, waits that long at most (lock_timeout: 5 s);
# also well under SQLite's 500 terms per compound SELECT.
BATCH_DAYS = 7

Window = tuple[datetime | None, datetime | None]
Segment = tuple[int, datetime | None, datetime | None]  # (window index, since, until) read from the rows


def utc(dt: datetime | None) -> datetime | None:
    """`dt` as an aware UTC datetime (naive means UTC, as the store writes it)."""
    if dt is None:
        return None
    return dt.replace(tzinfo=timezone.utc) if dt.tzinfo is None else dt.astimezone(timezone.utc)


def start_of(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=timezone.utc)


def cutoff_day(now: datetime | None = None) -> date:
    """The first day that may not be rolled up yet: days before it closed more than `SAFETY_MARGIN` ago."""
    now = utc(now) or datetime.now(timezone.utc)
    return (now - SAFETY_MARGIN).date()


def complete_days(since: datetime | None, until: datetime | None, first: date | None, cut: date) -> list[date]:
    """The closed UTC days (from `first`, the oldest row, to before `cut`) a window reads from the rollups:
    those wholly inside [since, until), and an edge day more than half inside it (its part outside
    the window is then subtracted, read from the rows: less to read than the part inside)."""
    if first is None:
        return []
    lo = first if since is None else max(first, since.date())
    hi = cut if until is None else min(cut, until.date() + DAY)
    days = []
    for d in (lo + timedelta(days=i) for i in range((hi - lo).days)):
        a, b = start_of(d), start_of(d) + DAY
        inside = min(b, until or b) - max(a, since or a)
        if inside == DAY or (inside > DAY / 2 and (since is None or since <= a or until is None or until >= b)):
            days.append(d)
    return days


def runs(days: Iterable[date]) -> list[tuple[date, date]]:
    """Sorted days as inclusive runs of consecutive days."""
    out: list[list[date]] = []
    for d in sorted(days):
        if out and d == out[-1][1] + DAY:
            out[-1][1] = d
        else:
            out.append([d, d])
    return [(a, b) for a, b in out]


def split(windows: list[Window], rolled: list[list[date]]) -> tuple[list[Segment], list[Segment]]:
    """What to read from the rows: (parts of each window its rolled-up days miss, to add; parts of
    its rolled-up edge days outside the window, to subtract). Each list's segments are disjoint."""
    plus: list[Segment] = []
    minus: list[Segment] = []
    for w, ((since, until), days) in enumerate(zip(windows, rolled)):
        cur = since
        for a, b in runs(days):
            lo, hi = start_of(a), start_of(b) + DAY
            if since is not None and lo < since:
                minus.append((w, lo, since))
            elif cur is None or cur < lo:
                plus.append((w, cur, lo))
            if until is not None and hi > until:
                minus.append((w, until, hi))
            cur = hi
        if cur is None or until is None or cur < until:
            plus.append((w, cur, until))
    return plus, minus


def in_range(col, since: datetime | None, until: datetime | None) -> list:
    conds = []
    if since is not None:
        conds.append(col >= since)
    if until is not None:
        conds.append(col < until)
    return conds


def first_day(session: Session) -> date | None:
    """The day of the oldest rating or comparison (two index lookups), None on an empty store."""
    oldest = [utc(session.scalar(select(func.min(t.created_at)))) for t in (Rating, Comparison)]
    oldest = [o for o in oldest if o is not None]
    return min(oldest).date() if oldest else None


def plan(session: Session, windows: list[Window], now: datetime | None = None) -> list[list[date]]:
    """Per window, the complete days rolling up would cover (none once the store is empty)."""
    first = first_day(session)
    cut = cutoff_day(now)
    return [complete_days(since, until, first, cut) for since, until in windows]


def rolled_days(session: Session, candidates: list[list[date]]) -> set[date]:
    """Which of the candidate days are rolled up now (read in the caller's snapshot)."""
    wanted = sorted({d for days in candidates for d in days})
    have: set[date] = set()
    for chunk in _batches(wanted, 1000):
        have.update(session.scalars(select(RollupDay.day).where(RollupDay.day.in_(chunk))))
    return have


def ensure(db_url: str | None, days: Iterable[date]) -> int:
    """Roll up those of `days` that are not yet; best effort: a failure (a lock not granted in time,
    a read-only database) is logged and the caller reads those days from the rows. Returns the
    number of days rolled up."""
    from llmops.db import session_factory
    from llmops.db.engine import read_only_session

    wanted = set(days)
    if not wanted:
        return 0
    with read_only_session(db_url) as s:  # the common case (all done) takes no write lock
        missing = wanted - rolled_days(s, [sorted(wanted)])
    if not missing:
        return 0
    done = 0
    for chunk in _batches(sorted(missing), BATCH_DAYS):  # one short transaction per batch of days
        try:
            with session_factory(db_url)() as s, s.begin():
                if s.get_bind().dialect.name == "postgresql":
                    s.execute(text("SET LOCAL lock_timeout = '2s'"))
                    s.execute(text("LOCK TABLE feedback_rollup_days IN SHARE ROW EXCLUSIVE MODE"))
                todo = sorted(set(chunk) - rolled_days(s, [chunk]))  # another process may have done some
                if todo:
                    materialise(s, todo)
            done += len(todo)
        except SQLAlchemyError as exc:
            log.warning("feedback rollup of %d days skipped (read from the rows instead): %s", len(chunk), exc)
            break
    return done


def rollup(db_url: str | None, now: datetime | None = None) -> int:
    """Roll up every complete day of the store not rolled up yet (`llmops feedback rollup`)."""
    from llmops.db.engine import read_only_session

    with read_only_session(db_url) as s:
        [days] = plan(s, [(None, None)], now)
    return ensure(db_url, days)


def materialise(session: Session, days: list[date]) -> None:
    """Sum `days` (each complete) from the rows into the rollup tables, in the caller's transaction."""
    from llmops.feedback.queries import live_pairs

    segments = [(i, start_of(d), start_of(d) + DAY) for i, d in enumerate(days)]
    rating_parts = [
        select(literal(i).label("w"), Rating.model_ref, Rating.model_version, Rating.scale_min, Rating.scale_max,
               Rating.score, func.count(Rating.id), func.max(Rating.id))
        .where(*in_range(Rating.created_at, since, until))
        .group_by(Rating.model_ref, Rating.model_version, Rating.scale_min, Rating.scale_max, Rating.score)
        for i, since, until in segments
    ]
    comparison_parts = [
        select(literal(i).label("w"), func.count(Comparison.id), func.max(Comparison.id))
        .where(*in_range(Comparison.created_at, since, until))
        for i, since, until in segments
    ]
    marks = [{"day": d, "n_ratings": 0, "n_comparisons": 0, "max_rating_id": None, "max_comparison_id": None,
              "rolled_at": datetime.now(timezone.utc)} for d in days]
    ratings: list[dict] = []
    for w, ref, version, lo, hi, score, n, max_id in session.execute(union_all(*rating_parts)):
        mark = marks[int(w)]
        mark["n_ratings"] += int(n)
        mark["max_rating_id"] = max(mark["max_rating_id"] or 0, int(max_id))
        ratings.append({"day": days[int(w)], "model_ref": ref, "model_version": version, "scale_min": lo,
                        "scale_max": hi, "score": score, "n": int(n)})
    for w, n, max_id in session.execute(union_all(*comparison_parts)):
        marks[int(w)].update(n_comparisons=int(n), max_comparison_id=max_id)
    pairs = [{"day": days[w], "model_ref": model, "n_pairs": n_pairs, "wins2": wins2, "n_comparisons": n_cmp}
             for w, model, n_pairs, wins2, n_cmp in live_pairs(session, segments)]
    session.execute(insert(RollupDay), marks)
    if ratings:
        session.execute(insert(RollupRating), ratings)
    if pairs:
        session.execute(insert(RollupComparison), pairs)


def rolled_ratings(session: Session, rolled: list[list[date]], *columns) -> Iterator[tuple]:
    """(window, *columns, count, sum of scores) from the rollups of each window's rolled days."""
    whens = [(and_(RollupRating.day >= a, RollupRating.day <= b), w)
             for w, days in enumerate(rolled) for a, b in runs(days)]
    if not whens:
        return iter(())
    w = case(*whens, else_=None)
    q = (select(w, *columns, func.sum(RollupRating.n), func.sum(RollupRating.n * RollupRating.score))
         .where(or_(*[cond for cond, _ in whens])).group_by(w, *columns))
    return iter(session.execute(q))


def rolled_pairs(session: Session, rolled: list[list[date]]) -> Iterator[tuple]:
    """(window, model reference, pairs, wins2, comparisons) from the rollups of each window's rolled days."""
    whens = [(and_(RollupComparison.day >= a, RollupComparison.day <= b), w)
             for w, days in enumerate(rolled) for a, b in runs(days)]
    if not whens:
        return iter(())
    w = case(*whens, else_=None)
    q = (select(w, RollupComparison.model_ref, func.sum(RollupComparison.n_pairs), func.sum(RollupComparison.wins2),
                func.sum(RollupComparison.n_comparisons))
         .where(or_(*[cond for cond, _ in whens])).group_by(w, RollupComparison.model_ref))
    return iter(session.execute(q))


def _batches(seq: list, n: int) -> Iterator[list]:
    for i in range(0, len(seq), n):
        yield seq[i:i + n]

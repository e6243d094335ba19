"""Assignment with overlap k: which item a rater gets next, skips, completion, progress.

Each project item has k slots. A rater takes one by a *claim* (an `Assignment` row with a
slot and an expiry), keeps it by answering (state ``done``), or frees it by skipping
(state ``skipped``, no slot — the item never comes back to that rater). A claim that
expires may be taken over by another rater. The database, not this module, guarantees
the bound: unique ``(item, slot)`` and ``1 <= slot <= overlap_k`` (see
`llmops.feedback.tables`), so two raters racing for the last slot cannot both win — the
second insert fails and the claimer moves on to the next candidate.

Serialisation: on SQLite every write transaction is ``BEGIN IMMEDIATE`` (one writer at a
time); on PostgreSQL the candidate item's row is locked (``FOR UPDATE SKIP LOCKED``, so
concurrent raters spread over items instead of queueing on one; a blocking lock only
when every open item is momentarily locked) before its slots are counted.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from llmops.feedback.errors import Conflict
from llmops.feedback.project_schemas import ProgressOut, RaterProgress
from llmops.feedback.tables import Assignment, Project, ProjectItem, Rater, utcnow

CANDIDATES = 20  # open items examined per claim attempt


@dataclass(frozen=True)
class Claim:
    item_id: int
    slot: int
    expires_at: datetime


def _holds_slot(now: datetime):
    """An assignment that holds one of its item's k slots at `now`."""
    return and_(Assignment.slot.is_not(None), or_(Assignment.state == "done", Assignment.expires_at > now))


def _expiry(project: Project, now: datetime) -> datetime:
    return now + timedelta(seconds=project.claim_timeout_s)


def _take_slot(session: Session, project: Project, item_id: int, rater_id: int, now: datetime,
               *, lock: str | None) -> Claim | None:
    """Claim a free slot of `item_id` for `rater_id` (who has no assignment on it), or None if it is full/locked."""
    if lock is not None and session.get_bind().dialect.name == "postgresql":
        stmt = select(ProjectItem.item_id).where(ProjectItem.item_id == item_id)
        stmt = stmt.with_for_update(skip_locked=(lock == "skip"))
        if session.scalar(stmt) is None:
            return None  # another claimer holds it right now
    # Expired claims of others give their slots back (the row goes: the item returns to that rater's queue too).
    session.execute(
        delete(Assignment).where(
            Assignment.item_id == item_id, Assignment.state == "claimed", Assignment.expires_at <= now
        )
    )
    used = set(session.scalars(select(Assignment.slot).where(Assignment.item_id == item_id, _holds_slot(now))))
    free = next((s for s in range(1, project.overlap_k + 1) if s not in used), None)
    if free is None:
        return None
    expires = _expiry(project, now)
    try:
        with session.begin_nested():
            session.add(Assignment(project_id=project.id, overlap_k=project.overlap_k, item_id=item_id,
                                   rater_id=rater_id, state="claimed", slot=free, claimed_at=now, expires_at=expires))
            session.flush()
    except IntegrityError:
        return None  # a concurrent claimer took this slot (or k changed): the database said no
    return Claim(item_id, free, expires)


def _open_items(session: Session, project: Project, rater_id: int, now: datetime):
    mine = select(Assignment.id).where(Assignment.item_id == ProjectItem.item_id, Assignment.rater_id == rater_id)
    held = (
        select(func.count()).select_from(Assignment)
        .where(Assignment.item_id == ProjectItem.item_id, _holds_slot(now))
        .scalar_subquery()
    )
    return (
        select(ProjectItem.item_id)
        .where(ProjectItem.project_id == project.id, ~mine.exists(), held < project.overlap_k)
        .order_by(ProjectItem.item_id)
        .limit(CANDIDATES)
    )


def claim_next(session: Session, project: Project, rater_id: int, now: datetime | None = None) -> Claim | None:
    """The rater's current claim in this project (renewed), else a new claim on the oldest open item.

    Never an item the rater answered or skipped; never a slot beyond k. None: nothing left for this rater.
    """
    claims = claim_batch(session, project, rater_id, 1, now)
    return claims[0] if claims else None


def claim_batch(session: Session, project: Project, rater_id: int, count: int,
                now: datetime | None = None) -> list[Claim]:
    """Up to `count` items held for the rater: their open claims first (renewed), then new claims, oldest first.

    Each new claim takes a slot exactly as a single claim does (the database bounds every item at k);
    fewer than `count` (or none) when the queue has fewer items left for this rater.
    """
    if count < 1:
        raise ValueError(f"count must be at least 1, got {count}")
    now = now or utcnow()
    held = session.scalars(
        select(Assignment)
        .where(Assignment.project_id == project.id, Assignment.rater_id == rater_id, Assignment.state == "claimed")
        .order_by(Assignment.item_id)
        .limit(count)
    ).all()
    claims = []
    for row in held:
        row.expires_at = _expiry(project, now)
        claims.append(Claim(row.item_id, row.slot, row.expires_at))
    if held:
        session.flush()
    while len(claims) < count:
        # A blocking row lock only while this transaction holds none: two batch claimers each
        # holding one item and waiting for the other's would deadlock (PostgreSQL).
        new = _claim_new(session, project, rater_id, now, count - len(claims), may_wait=not claims)
        if not new:
            break
        claims += new
    return claims


def _claim_new(session: Session, project: Project, rater_id: int, now: datetime, want: int,
               *, may_wait: bool) -> list[Claim]:
    """Up to `want` new claims from one look at the open items; a second, blocking pass (PostgreSQL)
    only if the first got none and `may_wait`."""
    out: list[Claim] = []
    for lock in ("skip", "wait") if may_wait else ("skip",):
        candidates = list(session.scalars(_open_items(session, project, rater_id, now)))
        for item_id in candidates:
            claim = _take_slot(session, project, item_id, rater_id, now, lock=lock)
            if claim is not None:
                out.append(claim)
                if len(out) == want:
                    return out
        if out or not candidates or session.get_bind().dialect.name != "postgresql":
            break
    return out


def _mine(session: Session, item_id: int, rater_id: int) -> Assignment | None:
    return session.scalar(select(Assignment).where(Assignment.item_id == item_id, Assignment.rater_id == rater_id))


def hold_slot(session: Session, project: Project, item_id: int, rater_id: int, now: datetime | None = None) -> Assignment:
    """Make sure the rater holds a slot of the item before their answer is stored (409 when k are taken)."""
    now = now or utcnow()
    row = _mine(session, item_id, rater_id)
    if row is not None and row.state in ("claimed", "done"):
        return row
    if row is not None:  # skipped earlier, answering now after all: the skip goes, a slot is needed
        session.delete(row)
        session.flush()
    claim = _take_slot(session, project, item_id, rater_id, now, lock="wait")
    if claim is None:
        raise Conflict(f"item {item_id} already has its {project.overlap_k} raters", field="item_id", code="item_full")
    return _mine(session, item_id, rater_id)


def finish(session: Session, row: Assignment, now: datetime | None = None) -> None:
    row.state, row.finished_at, row.expires_at = "done", now or utcnow(), None
    session.flush()


def skip(session: Session, project: Project, item_id: int, rater_id: int, now: datetime | None = None) -> str:
    """Store a skip: the item never comes back to this rater; a claimed slot is freed for others."""
    now = now or utcnow()
    row = _mine(session, item_id, rater_id)
    if row is not None and row.state == "done":
        raise Conflict(f"item {item_id} was already answered by this rater", field="item_id", code="already_answered")
    if row is None:
        session.add(Assignment(project_id=project.id, overlap_k=project.overlap_k, item_id=item_id, rater_id=rater_id,
                               state="skipped", slot=None, claimed_at=now, finished_at=now))
    else:
        row.state, row.slot, row.expires_at, row.finished_at = "skipped", None, None, now
    session.flush()
    return "skipped"


def release_expired(session: Session, project: Project, now: datetime | None = None) -> int:
    """Drop every expired claim of the project (claims also return lazily when a slot is needed)."""
    now = now or utcnow()
    result = session.execute(
        delete(Assignment).where(Assignment.project_id == project.id, Assignment.state == "claimed",
                                 Assignment.expires_at <= now)
    )
    return result.rowcount or 0


def progress(session: Session, project: Project, rater_id: int | None = None,
             now: datetime | None = None) -> ProgressOut:
    """Totals of the project, and rows per rater (only `rater_id`'s row when given)."""
    now = now or utcnow()
    n_items = session.scalar(select(func.count()).where(ProjectItem.project_id == project.id)) or 0
    done_per_item = (
        select(Assignment.item_id).where(Assignment.project_id == project.id, Assignment.state == "done")
        .group_by(Assignment.item_id).having(func.count() >= project.overlap_k).subquery()
    )
    n_complete = session.scalar(select(func.count()).select_from(done_per_item)) or 0
    live = or_(Assignment.state != "claimed", Assignment.expires_at > now)
    rows = session.execute(
        select(Rater.name, Assignment.rater_id, Assignment.state, func.count())
        .join(Rater, Rater.id == Assignment.rater_id)
        .where(Assignment.project_id == project.id, live)
        .group_by(Rater.name, Assignment.rater_id, Assignment.state)
    ).all()
    per: dict[int, RaterProgress] = {}
    totals = {"done": 0, "skipped": 0, "claimed": 0}
    for name, rid, state, n in rows:
        totals[state] += n
        p = per.setdefault(rid, RaterProgress(rater=name, answered=0, skipped=0, claimed=0))
        field = {"done": "answered", "skipped": "skipped", "claimed": "claimed"}[state]
        setattr(p, field, getattr(p, field) + n)
    if rater_id is not None:
        name = session.scalar(select(Rater.name).where(Rater.id == rater_id)) or str(rater_id)
        per = {rater_id: per.get(rater_id, RaterProgress(rater=name, answered=0, skipped=0, claimed=0))}
    return ProgressOut(
        project=project.name, overlap_k=project.overlap_k, n_items=n_items, n_complete=n_complete,
        n_answers=totals["done"], n_skips=totals["skipped"], n_claimed=totals["claimed"],
        raters=sorted(per.values(), key=lambda r: r.rater),
    )


def touch(session: Session, row: Assignment, project: Project, now: datetime | None = None) -> None:
    """Renew a claim's expiry (a rater still working on a partial answer)."""
    if row.state == "claimed":
        session.execute(update(Assignment).where(Assignment.id == row.id)
                        .values(expires_at=_expiry(project, now or utcnow())))

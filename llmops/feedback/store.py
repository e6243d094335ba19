"""The feedback store's write and read operations.

Functions take an open `Session` and never commit: the caller owns the transaction, so
an API request can add its idempotency record in the same commit as the write (the
write is acknowledged only once both are durable). `FeedbackStore` wraps them for
in-process use (e.g. a model server recording its outputs) with one commit per call.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from sqlalchemy import and_, bindparam, exists, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from llmops.db.prepared import Prepared
from llmops.feedback.errors import Conflict, FeedbackError, Invalid, NotFound
from llmops.feedback.tables import Comparison, ComparisonEntry, Item, Rating, Response, utcnow
from llmops.feedback.schemas import (
    DEFAULT_PAGE_LIMIT,
    MAX_PAGE_LIMIT,
    ComparisonIn,
    ItemCreated,
    ItemIn,
    ItemOut,
    ItemPage,
    RatingIn,
    ResponseIn,
    ResponseOut,
)

T = TypeVar("T")


def integrity_error(exc: IntegrityError) -> FeedbackError:
    """Translate a constraint violation into the error the client should see."""
    text = str(exc.orig)
    if "response_id_rater_id" in text or "feedback_ratings.response_id, feedback_ratings.rater_id" in text:
        return Conflict("this rater already rated this response", field="response_id", code="duplicate_rating")
    if "response_set" in text:
        return Conflict("this rater already compared these responses", field="item_id", code="duplicate_comparison")
    if "score_on_scale" in text:
        return Invalid("score is outside the item's scale", field="score", code="out_of_scale")
    if "FOREIGN KEY" in text.upper():
        return NotFound("a referenced id does not exist (or belongs to another item)", code="not_found")
    return Conflict("the write conflicts with stored data", code="conflict")


# ---------------------------------------------------------------- writes


def ensure_rater(session: Session, name: str) -> int:
    """The id of the rater called `name`, created if new (e.g. a model server filing end-user ratings)."""
    from llmops.feedback.tables import Rater

    rater_id = session.scalar(select(Rater.id).where(Rater.name == name))
    if rater_id is None:
        rater = Rater(name=name)
        session.add(rater)
        session.flush()
        rater_id = rater.id
    return rater_id


def create_item(session: Session, item: ItemIn, created_by: int | None = None) -> ItemCreated:
    """Store an item and its responses, and route it into a project (`llmops.feedback.projects.route_for`)."""
    from llmops.feedback.projects import item_scale, place_item, route_for

    route = route_for(session, item)
    scale_min, scale_max = item_scale(item, route)
    row = Item(
        prompt=item.prompt,
        context=item.context,
        meta=item.metadata,
        scale_min=scale_min,
        scale_max=scale_max,
        created_by=created_by,
    )
    session.add(row)
    session.flush()
    if route is not None:
        place_item(session, row.id, route)
    now = utcnow()
    ids = session.scalars(
        insert(Response).returning(Response.id, sort_by_parameter_order=True),
        [
            {
                "item_id": row.id,
                "position": i,
                "text": r.text,
                "model_ref": r.model,
                "model_version": r.model_version,
                "generation_params": r.generation_params,
                "created_at": now,
            }
            for i, r in enumerate(item.responses)
        ],
    ).all()
    return ItemCreated(item_id=row.id, response_ids=list(ids))


# Built once: the rating path runs for every request of a batch.
_RATING_TARGET = (
    select(Response.item_id, Item.scale_min, Item.scale_max, Response.model_ref, Response.model_version)
    .join(Item, Item.id == Response.item_id)
    .where(Response.id == bindparam("response_id"))
)
_INSERT_RATING = insert(Rating).returning(Rating.id)
# The common case in one statement: insert the rating with the response's item, scale and
# model reference selected in place, only if the score is on the scale. 0.59 -> 0.47 ms of
# client CPU per rating on PostgreSQL, 0.29 -> 0.24 on SQLite (a SAVEPOINT each, 10 per
# transaction, measured side by side 2026-12-01), and one statement fewer for the database.
_RATING_COLUMNS = ("response_id", "item_id", "scale_min", "scale_max", "rater_id", "score", "critique",
                   "created_at", "model_ref", "model_version")
# On the DBAPI cursor (`llmops.db.prepared`): the feedback service's hottest statement.
_INSERT_RATING_ON_SCALE = Prepared(insert(Rating).from_select(
    list(_RATING_COLUMNS),
    select(
        Response.id, Response.item_id, Item.scale_min, Item.scale_max,
        bindparam("rater_id", type_=Rating.rater_id.type), bindparam("score", type_=Rating.score.type),
        bindparam("critique", type_=Rating.critique.type), bindparam("created_at", type_=Rating.created_at.type),
        Response.model_ref, Response.model_version,
    )
    .join(Item, Item.id == Response.item_id)
    .where(Response.id == bindparam("response_id"), Item.scale_min <= bindparam("score"),
           Item.scale_max >= bindparam("score")),
).returning(Rating.id))


def add_rating(session: Session, rating: RatingIn, rater_id: int) -> int:
    """Insert one rating; the score is checked against the item's scale here and in the database.

    Core statements on the session's connection: no ORM state, so it is cheap per row. The row
    carries the response's model reference, read in the same statement (dashboards aggregate
    by it). When nothing was inserted, `_add_rating_checked` says why (or inserts after all).
    """
    row_id = _INSERT_RATING_ON_SCALE.scalar(
        session.connection(),
        {"response_id": rating.response_id, "rater_id": rater_id, "score": rating.score,
         "critique": rating.critique, "created_at": utcnow()},
    )
    return row_id if row_id is not None else _add_rating_checked(session, rating, rater_id)


def _add_rating_checked(session: Session, rating: RatingIn, rater_id: int) -> int:
    """Look the response up first: a precise error for a missing response or an off-scale score."""
    connection = session.connection()
    target = connection.execute(_RATING_TARGET, {"response_id": rating.response_id}).first()
    if target is None:
        raise NotFound(f"response {rating.response_id} does not exist", field="response_id")
    if not target.scale_min <= rating.score <= target.scale_max:
        raise Invalid(
            f"score {rating.score} is outside the item's scale {target.scale_min}..{target.scale_max}",
            field="score",
            code="out_of_scale",
        )
    return connection.execute(
        _INSERT_RATING,
        {
            "response_id": rating.response_id,
            "item_id": target.item_id,
            "scale_min": target.scale_min,
            "scale_max": target.scale_max,
            "rater_id": rater_id,
            "score": rating.score,
            "critique": rating.critique,
            "created_at": utcnow(),
            "model_ref": target.model_ref,
            "model_version": target.model_version,
        },
    ).scalar_one()


def add_comparison(session: Session, comparison: ComparisonIn, rater_id: int) -> int:
    ids = comparison.response_ids()
    # An existence check, not `session.get(Item, ...)`: that also loads the item's responses
    # (selectin), 11 % of a batch answer's time in the rater-queue profile.
    if session.scalar(select(Item.id).where(Item.id == comparison.item_id)) is None:
        raise NotFound(f"item {comparison.item_id} does not exist", field="item_id")
    found = {
        rid: (ref, version)
        for rid, ref, version in session.execute(
            select(Response.id, Response.model_ref, Response.model_version)
            .where(and_(Response.item_id == comparison.item_id, Response.id.in_(ids)))
        )
    }
    missing = [i for i in ids if i not in found]
    if missing:
        raise NotFound(f"responses {missing} are not responses of item {comparison.item_id}", field="response_id")
    row = Comparison(
        item_id=comparison.item_id,
        rater_id=rater_id,
        kind=comparison.kind(),
        response_set=",".join(str(i) for i in sorted(ids)),
        critique=comparison.critique,
    )
    session.add(row)
    session.flush()
    session.execute(
        insert(ComparisonEntry),
        [
            {"comparison_id": row.id, "response_id": rid, "item_id": comparison.item_id, "rank": rank,
             "model_ref": found[rid][0], "model_version": found[rid][1]}
            for rid, rank in comparison.ranks().items()
        ],
    )
    return row.id


def bulk(session: Session, elements: list[Any], write: Callable[[Session, Any], T]) -> list[T | FeedbackError]:
    """Apply `write` to each element in its own savepoint: one bad element fails alone."""
    results: list[T | FeedbackError] = []
    for element in elements:
        try:
            with session.begin_nested():
                results.append(write(session, element))
        except FeedbackError as exc:
            results.append(exc)
        except IntegrityError as exc:
            results.append(integrity_error(exc))
    return results


# ---------------------------------------------------------------- reads


def _item_out(item: Item) -> ItemOut:
    return ItemOut(
        id=item.id,
        prompt=item.prompt,
        context=item.context,
        metadata=item.meta,
        scale_min=item.scale_min,
        scale_max=item.scale_max,
        created_at=item.created_at.isoformat(),
        responses=[
            ResponseOut(
                id=r.id,
                position=r.position,
                text=r.text,
                model=r.model_ref,
                model_version=r.model_version,
                generation_params=r.generation_params,
            )
            for r in item.responses
        ],
    )


def get_item(session: Session, item_id: int) -> ItemOut:
    item = session.get(Item, item_id)
    if item is None:
        raise NotFound(f"item {item_id} does not exist", field="item_id")
    return _item_out(item)


def encode_cursor(last_id: int) -> str:
    return base64.urlsafe_b64encode(f"i:{last_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        kind, value = raw.split(":", 1)
        last = int(value)
        if kind != "i" or last < 0:
            raise ValueError
        return last
    except (ValueError, UnicodeDecodeError) as exc:
        raise Invalid("malformed cursor (pass back next_cursor unchanged)", field="cursor") from exc


def list_items(session: Session, cursor: str | None = None, limit: int = DEFAULT_PAGE_LIMIT) -> ItemPage:
    """Keyset pagination by id: stable under concurrent inserts, O(limit) per page."""
    if not 1 <= limit <= MAX_PAGE_LIMIT:
        raise Invalid(f"limit must be in 1..{MAX_PAGE_LIMIT}", field="limit")
    after = decode_cursor(cursor) if cursor else 0
    rows = list(session.scalars(select(Item).where(Item.id > after).order_by(Item.id).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return ItemPage(items=[_item_out(r) for r in rows], next_cursor=encode_cursor(rows[-1].id) if more else None)


def next_item_for(session: Session, rater_id: int) -> ItemOut | None:
    """The oldest item this rater has not answered yet (what the rater page shows next).

    Answered: every response rated, or the item compared; a comparison-only answer counts,
    so the page moves on after it.
    """
    unrated = (
        select(Response.item_id)
        .where(
            ~exists().where(and_(Rating.response_id == Response.id, Rating.rater_id == rater_id)),
            ~exists().where(and_(Comparison.item_id == Response.item_id, Comparison.rater_id == rater_id)),
        )
        .order_by(Response.item_id)
        .limit(1)
    )
    item_id = session.scalar(unrated)
    return None if item_id is None else _item_out(session.get(Item, item_id))


# ---------------------------------------------------------------- in-process facade


class FeedbackStore:
    """In-process API over one database (e.g. for a serving endpoint recording its outputs).

    >>> store = FeedbackStore("sqlite:///fb.db")
    >>> created = store.create_item("2+2?", [{"text": "4", "model": "registry:m@prod"}])
    >>> created.response_ids
    """

    def __init__(self, db_url: str | None = None, *, migrate: bool = True) -> None:
        from llmops.db import session_factory, upgrade

        if migrate:
            upgrade(db_url)
        self._sessions: sessionmaker[Session] = session_factory(db_url)

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        with self._sessions() as session, session.begin():
            yield session

    def _write(self, fn: Callable[[Session], T]) -> T:
        try:
            with self.transaction() as session:
                return fn(session)
        except IntegrityError as exc:
            raise integrity_error(exc) from exc

    def create_item(
        self,
        prompt: str,
        responses: list[dict[str, Any] | ResponseIn],
        *,
        context: str | None = None,
        metadata: dict[str, Any] | None = None,
        scale: tuple[int, int] | None = None,
        created_by: int | None = None,
        project: str | None = None,
    ) -> ItemCreated:
        """Record a prompt and its responses (model reference/version, generation params); returns their ids.

        The scale defaults to 1..5, or to the rating scale of the project the item is routed to;
        `project` puts it in that project (else routing rules decide).
        """
        item = ItemIn(
            prompt=prompt,
            context=context,
            metadata=metadata,
            **({"scale_min": scale[0], "scale_max": scale[1]} if scale is not None else {}),
            responses=[r if isinstance(r, ResponseIn) else ResponseIn(**r) for r in responses],
            project=project,
        )
        return self._write(lambda s: create_item(s, item, created_by))

    def rater(self, name: str) -> int:
        """Get or create the rater identity `name` (ratings are unique per response and rater)."""
        return self._write(lambda s: ensure_rater(s, name))

    def add_rating(self, response_id: int, score: int, rater_id: int, critique: str | None = None) -> int:
        rating = RatingIn(response_id=response_id, score=score, critique=critique)
        return self._write(lambda s: add_rating(s, rating, rater_id))

    def add_comparison(self, comparison: ComparisonIn | dict[str, Any], rater_id: int) -> int:
        cmp = comparison if isinstance(comparison, ComparisonIn) else ComparisonIn(**comparison)
        return self._write(lambda s: add_comparison(s, cmp, rater_id))

    def get_item(self, item_id: int) -> ItemOut:
        with self._sessions() as session:
            return get_item(session, item_id)

    def list_items(self, cursor: str | None = None, limit: int = DEFAULT_PAGE_LIMIT) -> ItemPage:
        with self._sessions() as session:
            return list_items(session, cursor, limit)

"""`llmops.db.prepared`: the hot INSERT on the DBAPI cursor stores what SQLAlchemy's own execution stores."""

from __future__ import annotations

from datetime import timezone

import pytest


def test_prepared_rating_insert_matches_the_core_statement(db_url: str) -> None:
    from sqlalchemy import select
    from sqlalchemy.exc import IntegrityError

    from llmops.db import session_factory
    from llmops.feedback import store
    from llmops.feedback.schemas import RatingIn
    from llmops.feedback.store import FeedbackStore
    from llmops.feedback.tables import Rater, Rating, utcnow

    from .helpers import make_keys

    make_keys(db_url)
    responses = FeedbackStore(db_url, migrate=False).create_item(
        "p", [{"text": "a", "model": "m"}, {"text": "b", "model": "m"}], scale=(0, 10)).response_ids
    sessions = session_factory(db_url)
    with sessions() as s:
        rater = s.scalar(select(Rater.id).where(Rater.name == "alice"))
    params = {"rater_id": rater, "score": 7, "critique": "ok ünïcode", "created_at": utcnow()}
    with sessions() as s, s.begin():
        direct = store._INSERT_RATING_ON_SCALE.scalar(s.connection(), {**params, "response_id": responses[0]})
        core = s.connection().execute(store._INSERT_RATING_ON_SCALE.statement,
                                      {**params, "response_id": responses[1]}).scalar()
        # off the item's scale: no row, no error (add_rating then explains why)
        assert store._INSERT_RATING_ON_SCALE.scalar(s.connection(), {**params, "score": 11,
                                                                      "response_id": responses[0]}) is None
    with sessions() as s:
        a, b = (s.get(Rating, i) for i in (direct, core))
        columns = [c.key for c in Rating.__table__.columns if c.key not in ("id", "response_id")]
        assert {c: getattr(a, c) for c in columns} == {c: getattr(b, c) for c in columns}
        assert (a.score, a.critique, a.scale_max, a.model_ref) == (7, "ok ünïcode", 10, "m")
        # the DateTime bind processor ran: the same instant back (SQLite keeps no zone)
        stored = a.created_at if a.created_at.tzinfo else a.created_at.replace(tzinfo=timezone.utc)
        assert stored == params["created_at"]
    with sessions() as s, s.begin(), pytest.raises(IntegrityError):  # a driver error, as SQLAlchemy's
        store.add_rating(s, RatingIn(response_id=responses[0], score=2), rater)

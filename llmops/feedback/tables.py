"""Tables of the feedback store.

Integrity lives in the database, not only in Python, so that a second writer (another
worker, a script, a future service) cannot break it:

- one rating per (response, rater): a unique constraint;
- a rating's score lies on its item's scale: the rating carries the item's scale,
  pinned by a composite foreign key to ``(items.id, scale_min, scale_max)`` and checked
  by ``score BETWEEN scale_min AND scale_max``;
- a rating or comparison entry names a response *of that item*: composite foreign keys
  to ``(responses.id, responses.item_id)``;
- one comparison per (item, rater, set of responses compared);
- a rating or comparison entry carries its response's model reference (``model_ref``,
  ``model_version``, copied by the store when it writes the row) so that aggregates per model
  read the ratings alone, never joining a window of ratings to the responses; where they are
  set, a composite foreign key to ``(responses.id, model_ref, model_version)`` (ON
  UPDATE CASCADE) pins them to the response's (a NULL reference is not checked by the database:
  SQL foreign keys skip rows with a NULL column, so the store alone keeps those equal);
- an item is in at most one project (``feedback_project_items.item_id`` is its key);
- assignment with overlap k: a rater holds at most one assignment per item (unique
  ``(item_id, rater_id)``), and a claimed or answered assignment holds one of the item's
  k slots — unique ``(item_id, slot)`` with ``slot BETWEEN 1 AND overlap_k``, where the
  assignment's ``overlap_k`` is pinned to its project's by a composite foreign key. So
  no writer, whatever its bugs or races, can give an item more than k raters.
"""

from __future__ import annotations

from datetime import date, datetime, timezone
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    Index,
    CheckConstraint,
    DateTime,
    ForeignKey,
    ForeignKeyConstraint,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from llmops.db.base import Base

# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL gets 64-bit ids.
Id = BigInteger().with_variant(Integer, "sqlite")
ROLES = ("admin", "service", "rater", "client")
FEEDBACK_HEAD = "feedback_0005"  # newest revision of the `feedback` alembic branch
COMPARISON_KINDS = ("ranking", "pair", "tie")
ASSIGNMENT_STATES = ("claimed", "done", "skipped")


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Rater(Base):
    """An identity that authors feedback (a person, a model server, an admin)."""

    __tablename__ = "feedback_raters"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ApiKey(Base):
    """A bearer key: only the sha256 of its secret is stored; ``key_id`` is the public lookup prefix."""

    __tablename__ = "feedback_api_keys"
    __table_args__ = (CheckConstraint(f"role IN {ROLES!r}", name="role"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    key_id: Mapped[str] = mapped_column(String(32), unique=True)
    secret_sha256: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(16))
    rater_id: Mapped[int] = mapped_column(ForeignKey("feedback_raters.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)

    rater: Mapped[Rater] = relationship(lazy="joined")


class Item(Base):
    """A prompt (with optional context) whose responses are judged."""

    __tablename__ = "feedback_items"
    __table_args__ = (
        CheckConstraint("scale_min < scale_max", name="scale_order"),
        UniqueConstraint("id", "scale_min", "scale_max"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    prompt: Mapped[str] = mapped_column(Text)
    context: Mapped[str | None] = mapped_column(Text, nullable=True)
    meta: Mapped[dict[str, Any] | None] = mapped_column("metadata", JSON, nullable=True)
    scale_min: Mapped[int] = mapped_column(Integer, default=1)
    scale_max: Mapped[int] = mapped_column(Integer, default=5)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("feedback_raters.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)

    responses: Mapped[list[Response]] = relationship(
        back_populates="item", order_by="Response.position", cascade="all, delete-orphan", lazy="selectin"
    )


class Response(Base):
    """One model output for an item, with the model reference/version and generation parameters."""

    __tablename__ = "feedback_responses"
    __table_args__ = (
        UniqueConstraint("item_id", "position"),
        UniqueConstraint("id", "item_id"),
        # Target of the ratings' and comparison entries' model-reference foreign keys.
        # A unique index (not a constraint: SQLite adds an index without rebuilding the table).
        Index("uq_feedback_responses_model", "id", "model_ref", "model_version", unique=True),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("feedback_items.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(Text)
    model_ref: Mapped[str | None] = mapped_column(String(500), nullable=True, index=True)
    model_version: Mapped[str | None] = mapped_column(String(200), nullable=True)
    generation_params: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    item: Mapped[Item] = relationship(back_populates="responses")


class Rating(Base):
    """A score on the item's scale, by one rater, for one response (optional critique)."""

    __tablename__ = "feedback_ratings"
    __table_args__ = (
        UniqueConstraint("response_id", "rater_id"),
        ForeignKeyConstraint(
            ["response_id", "model_ref", "model_version"],
            ["feedback_responses.id", "feedback_responses.model_ref", "feedback_responses.model_version"],
            name="fk_feedback_ratings_response_model",
            ondelete="CASCADE",
            onupdate="CASCADE",
        ),
        CheckConstraint("score >= scale_min AND score <= scale_max", name="score_on_scale"),
        ForeignKeyConstraint(
            ["response_id", "item_id"], ["feedback_responses.id", "feedback_responses.item_id"], ondelete="CASCADE"
        ),
        ForeignKeyConstraint(
            ["item_id", "scale_min", "scale_max"],
            ["feedback_items.id", "feedback_items.scale_min", "feedback_items.scale_max"],
            ondelete="CASCADE",
        ),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    response_id: Mapped[int] = mapped_column(Id)
    item_id: Mapped[int] = mapped_column(Id, index=True)
    scale_min: Mapped[int] = mapped_column(Integer)
    scale_max: Mapped[int] = mapped_column(Integer)
    rater_id: Mapped[int] = mapped_column(ForeignKey("feedback_raters.id"), index=True)
    score: Mapped[int] = mapped_column(Integer)
    critique: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    # The rated response's model reference, copied at write time (see the module docstring).
    model_ref: Mapped[str | None] = mapped_column(String(500), nullable=True)
    model_version: Mapped[str | None] = mapped_column(String(200), nullable=True)


class Comparison(Base):
    """A judgement between responses of one item: a ranking of K (best first), a pair, or a tie."""

    __tablename__ = "feedback_comparisons"
    __table_args__ = (
        CheckConstraint(f"kind IN {COMPARISON_KINDS!r}", name="kind"),
        UniqueConstraint("item_id", "rater_id", "response_set"),
        UniqueConstraint("id", "item_id"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("feedback_items.id", ondelete="CASCADE"))
    rater_id: Mapped[int] = mapped_column(ForeignKey("feedback_raters.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    # Sorted, comma-joined response ids: one judgement per rater per set of responses.
    response_set: Mapped[str] = mapped_column(String(400))
    critique: Mapped[str | None] = mapped_column(Text, nullable=True)  # on the comparison as a whole
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)

    entries: Mapped[list[ComparisonEntry]] = relationship(
        order_by="ComparisonEntry.rank", cascade="all, delete-orphan", lazy="selectin"
    )


class ComparisonEntry(Base):
    """A response's rank within a comparison (1 = best; equal ranks are ties)."""

    __tablename__ = "feedback_comparison_entries"
    __table_args__ = (
        CheckConstraint("rank >= 1", name="rank_positive"),
        ForeignKeyConstraint(
            ["response_id", "model_ref", "model_version"],
            ["feedback_responses.id", "feedback_responses.model_ref", "feedback_responses.model_version"],
            name="fk_feedback_comparison_entries_response_model",
            ondelete="CASCADE",
            onupdate="CASCADE",
        ),

        ForeignKeyConstraint(
            ["comparison_id", "item_id"], ["feedback_comparisons.id", "feedback_comparisons.item_id"], ondelete="CASCADE"
        ),
        ForeignKeyConstraint(
            ["response_id", "item_id"], ["feedback_responses.id", "feedback_responses.item_id"], ondelete="CASCADE"
        ),
    )

    comparison_id: Mapped[int] = mapped_column(Id, primary_key=True)
    response_id: Mapped[int] = mapped_column(Id, primary_key=True)
    item_id: Mapped[int] = mapped_column(Id)
    rank: Mapped[int] = mapped_column(Integer)
    # The response's model reference, copied at write time (see the module docstring).
    model_ref: Mapped[str | None] = mapped_column(String(500), nullable=True)
    model_version: Mapped[str | None] = mapped_column(String(200), nullable=True)


class IdempotencyRecord(Base):
    """The first answer to a write made with an ``Idempotency-Key``, stored in the write's own transaction."""

    __tablename__ = "feedback_idempotency"

    rater_id: Mapped[int] = mapped_column(ForeignKey("feedback_raters.id"), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    request_sha256: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int] = mapped_column(Integer)
    response_body: Mapped[Any] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ExportSnapshot(Base):
    """A record of each preference export, so lineage (``feedback_snapshot_id``) can be looked up."""

    __tablename__ = "feedback_exports"

    snapshot_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    strategy: Mapped[str] = mapped_column(String(40))
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    n_rows: Mapped[int] = mapped_column(Integer)
    max_rating_id: Mapped[int | None] = mapped_column(Id, nullable=True)
    max_comparison_id: Mapped[int | None] = mapped_column(Id, nullable=True)
    agreement: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ExportRow(Base):
    """One preference row of a snapshot, stored as the exact JSON text served: re-reads are byte-identical."""

    __tablename__ = "feedback_export_rows"

    snapshot_id: Mapped[str] = mapped_column(
        ForeignKey("feedback_exports.snapshot_id", ondelete="CASCADE"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    row_json: Mapped[str] = mapped_column(Text)


class Correction(Base):
    """A rater's corrected (better) version of one response: supervised fine-tuning data."""

    __tablename__ = "feedback_corrections"
    __table_args__ = (
        UniqueConstraint("response_id", "rater_id"),
        ForeignKeyConstraint(
            ["response_id", "item_id"], ["feedback_responses.id", "feedback_responses.item_id"], ondelete="CASCADE"
        ),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    item_id: Mapped[int] = mapped_column(Id, index=True)
    response_id: Mapped[int] = mapped_column(Id)
    rater_id: Mapped[int] = mapped_column(ForeignKey("feedback_raters.id"), index=True)
    text: Mapped[str] = mapped_column(Text)
    meta: Mapped[dict[str, Any] | None] = mapped_column("metadata", JSON, nullable=True)  # e.g. {"simulated": true}
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)


class Project(Base):
    """A unit of rating work: guidelines, typed questions, overlap k and routing of items into it.

    ``questions`` and ``routing`` are JSON validated by `llmops.feedback.schemas` (a project is
    written rarely and read whole). ``is_default`` marks the one project (at most) that takes
    items no routing rule matched; without one such items go to no rater queue.
    """

    __tablename__ = "feedback_projects"
    __table_args__ = (
        CheckConstraint("overlap_k >= 1", name="overlap_positive"),
        CheckConstraint("claim_timeout_s >= 1", name="claim_timeout_positive"),
        UniqueConstraint("id", "overlap_k"),
        Index(
            "uq_feedback_projects_one_default",
            "is_default",
            unique=True,
            sqlite_where=text("is_default"),
            postgresql_where=text("is_default"),
        ),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    guidelines: Mapped[str] = mapped_column(Text, default="")
    questions: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    overlap_k: Mapped[int] = mapped_column(Integer, default=1)
    show_model_metadata: Mapped[bool] = mapped_column(Boolean, default=False)
    claim_timeout_s: Mapped[int] = mapped_column(Integer, default=900)
    # none_as_null: None is SQL NULL, not the JSON text 'null' (so IS NULL means "no rules").
    routing: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True), nullable=True)
    priority: Mapped[int] = mapped_column(Integer, default=0)  # routing: higher first, then lower id
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ProjectItem(Base):
    """An item's membership of a project (at most one), with its gold answer if an admin set one."""

    __tablename__ = "feedback_project_items"
    __table_args__ = (UniqueConstraint("project_id", "item_id"),)

    item_id: Mapped[int] = mapped_column(ForeignKey("feedback_items.id", ondelete="CASCADE"), primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("feedback_projects.id", ondelete="CASCADE"), index=True)
    routed_by: Mapped[str] = mapped_column(String(40))  # "explicit", "rule", "default", "admin"
    gold: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True), nullable=True)  # known answers (schemas.GoldIn)
    added_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Assignment(Base):
    """A rater's claim on, answer to, or skip of one project item (see the module docstring for the k slots).

    ``claimed``: holds a slot until ``expires_at`` (then anyone may take the slot over);
    ``done``: holds its slot for good; ``skipped``: holds no slot, but keeps the item out of
    this rater's queue.
    """

    __tablename__ = "feedback_assignments"
    __table_args__ = (
        CheckConstraint(f"state IN {ASSIGNMENT_STATES!r}", name="state"),
        CheckConstraint(
            "(state = 'skipped' AND slot IS NULL) OR (state <> 'skipped' AND slot >= 1 AND slot <= overlap_k)",
            name="slot_within_overlap",
        ),
        UniqueConstraint("item_id", "rater_id"),
        UniqueConstraint("item_id", "slot"),
        ForeignKeyConstraint(
            ["project_id", "item_id"],
            ["feedback_project_items.project_id", "feedback_project_items.item_id"],
            ondelete="CASCADE",
        ),
        ForeignKeyConstraint(
            ["project_id", "overlap_k"],
            ["feedback_projects.id", "feedback_projects.overlap_k"],
            ondelete="CASCADE",
            onupdate="CASCADE",
        ),
        Index("ix_feedback_assignments_project_rater", "project_id", "rater_id"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    project_id: Mapped[int] = mapped_column(Id)
    overlap_k: Mapped[int] = mapped_column(Integer)
    item_id: Mapped[int] = mapped_column(Id)
    rater_id: Mapped[int] = mapped_column(ForeignKey("feedback_raters.id"))
    state: Mapped[str] = mapped_column(String(16))
    slot: Mapped[int | None] = mapped_column(Integer, nullable=True)
    claimed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class RollupDay(Base):
    """A complete UTC day whose ratings and comparisons are summed in the two rollup tables below.

    Written by `llmops.feedback.rollups` (never by the write path); deleted by database triggers
    (migration feedback_0005) whenever a rating, comparison or comparison entry of that day is
    deleted or changed, which drops the day's rollup rows with it (ON DELETE CASCADE): a day
    without a row here is read from the ratings themselves.
    """

    __tablename__ = "feedback_rollup_days"
    __table_args__ = (
        CheckConstraint("n_ratings >= 0 AND n_comparisons >= 0", name="counts_non_negative"),
    )

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    n_ratings: Mapped[int] = mapped_column(Integer)
    n_comparisons: Mapped[int] = mapped_column(Integer)
    max_rating_id: Mapped[int | None] = mapped_column(Id, nullable=True)
    max_comparison_id: Mapped[int | None] = mapped_column(Id, nullable=True)
    rolled_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class RollupRating(Base):
    """The count of one score per (day, model reference, model version, scale) (NULL references included)."""

    __tablename__ = "feedback_rollup_ratings"
    __table_args__ = (
        CheckConstraint("n >= 1", name="n_positive"),
        CheckConstraint("score >= scale_min AND score <= scale_max", name="score_on_scale"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    day: Mapped[date] = mapped_column(ForeignKey("feedback_rollup_days.day", ondelete="CASCADE"), index=True)
    model_ref: Mapped[str | None] = mapped_column(String(500), nullable=True)
    model_version: Mapped[str | None] = mapped_column(String(200), nullable=True)
    scale_min: Mapped[int] = mapped_column(Integer)
    scale_max: Mapped[int] = mapped_column(Integer)
    score: Mapped[int] = mapped_column(Integer)
    n: Mapped[int] = mapped_column(Integer)


class RollupComparison(Base):
    """Per (day, model reference): ordered entry pairs against other models, their wins (a tie = 1,
    a win = 2) and the comparisons the model took part in, as `queries.quality_by_model` sums them."""

    __tablename__ = "feedback_rollup_comparisons"
    __table_args__ = (
        CheckConstraint("n_pairs >= 1 AND n_comparisons >= 1", name="counts_positive"),
        CheckConstraint("wins2 >= 0 AND wins2 <= 2 * n_pairs", name="wins_within_pairs"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    day: Mapped[date] = mapped_column(ForeignKey("feedback_rollup_days.day", ondelete="CASCADE"), index=True)
    model_ref: Mapped[str | None] = mapped_column(String(500), nullable=True)
    n_pairs: Mapped[int] = mapped_column(Integer)
    wins2: Mapped[int] = mapped_column(Integer)
    n_comparisons: Mapped[int] = mapped_column(Integer)

"""The runs index: one row per training run directory, so lists of thousands of runs filter and page in SQL.

Run folders stay the source of truth (manifest.json, metrics.jsonl, checkpoints); these rows
are a cache of what their manifests say, refilled idempotently by `runs_index.scan_runs`.
"""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import DateTime, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from llmops.db.base import Base

RUNS_HEAD = "runs_0001"  # newest revision of the `runs` alembic branch


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class RunIndexRow(Base):
    """What a run's manifest says, for listing and filtering (the folder holds the rest)."""

    __tablename__ = "runs_index"
    __table_args__ = (Index("ix_runs_index_started", "started_at", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_dir: Mapped[str] = mapped_column(String(1024), nullable=False, unique=True)
    run_id: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    name: Mapped[str] = mapped_column(String(256), nullable=False)
    recipe: Mapped[str] = mapped_column(String(256), nullable=False, index=True)
    task: Mapped[str] = mapped_column(String(32), nullable=False, index=True)
    status: Mapped[str] = mapped_column(String(32), nullable=False, index=True)
    tags: Mapped[str] = mapped_column(Text, nullable=False, default="")  # ",a,b," for display; filters use the tag table
    base_model: Mapped[str | None] = mapped_column(String(512), nullable=True)
    registered: Mapped[str | None] = mapped_column(String(256), nullable=True)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    steps_completed: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    max_steps: Mapped[int | None] = mapped_column(Integer, nullable=True)
    train_loss: Mapped[float | None] = mapped_column(Float, nullable=True)
    eval_loss: Mapped[float | None] = mapped_column(Float, nullable=True)
    throughput: Mapped[float | None] = mapped_column(Float, nullable=True)
    throughput_unit: Mapped[str | None] = mapped_column(String(64), nullable=True)
    wall_time_s: Mapped[float | None] = mapped_column(Float, nullable=True)
    manifest_mtime: Mapped[float] = mapped_column(Float, nullable=False, default=0.0)
    indexed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)


class RunTagRow(Base):
    """One (run, tag) pair: the tag filter is an indexed lookup, not a LIKE over every row."""

    __tablename__ = "runs_index_tags"

    run_pk: Mapped[int] = mapped_column(Integer, ForeignKey("runs_index.id", ondelete="CASCADE"), primary_key=True)
    tag: Mapped[str] = mapped_column(String(128), primary_key=True, index=True)

"""Monitoring tables: drift reference profiles, alert state machines, incidents, events and retraining jobs."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import JSON, DateTime, Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from llmops.db.base import Base

MONITOR_HEAD = "monitor_0002"  # newest revision of the `monitor` alembic branch


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class DriftReferenceRow(Base):
    """A reference profile fitted once for a registry version (never refitted in place)."""

    __tablename__ = "monitor_drift_references"
    __table_args__ = (UniqueConstraint("model_name", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_name: Mapped[str] = mapped_column(String(128), nullable=False)
    version: Mapped[int] = mapped_column(Integer, nullable=False)
    profile: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    sha256: Mapped[str] = mapped_column(String(64), nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, nullable=False)


class AlertRow(Base):
    """One alert state machine per (rules scope, model, rule): ok -> pending -> firing -> resolved.

    `breaches` counts consecutive checks at or above `trigger` (pending until `for_checks`);
    `last_training_at` is when a retraining for this alert *started* (the cooldown's origin);
    `errors`/`next_check_at` back off a rule whose check keeps failing.
    """

    __tablename__ = "monitor_alerts"
    __table_args__ = (UniqueConstraint("scope", "model", "rule"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    scope: Mapped[str] = mapped_column(String(512), nullable=False)
    model: Mapped[str] = mapped_column(String(256), nullable=False, default="")
    rule: Mapped[str] = mapped_column(String(128), nullable=False)
    state: Mapped[str] = mapped_column(String(16), nullable=False, default="ok")
    breaches: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    last_value: Mapped[float | None] = mapped_column(Float, nullable=True)
    state_since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    last_notified_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    last_training_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    fire_count: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    errors: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    next_check_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, nullable=False)


class IncidentRow(Base):
    """A firing of an alert, from `fired` to `resolved`; retraining is decided per incident.

    retrain: none (not asked) | waiting (cooldown, too little data: retried at `next_try_at`) |
    claimed (one process won the right to retrain; `job_id` names the job) | done | failed | abandoned.
    """

    __tablename__ = "monitor_incidents"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("monitor_alerts.id"), nullable=False, index=True)
    scope: Mapped[str] = mapped_column(String(512), nullable=False)
    model: Mapped[str] = mapped_column(String(256), nullable=False, default="")
    rule: Mapped[str] = mapped_column(String(128), nullable=False)
    opened_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    value: Mapped[float | None] = mapped_column(Float, nullable=True)
    detail: Mapped[str] = mapped_column(Text, nullable=False, default="")
    retrain: Mapped[str] = mapped_column(String(16), nullable=False, default="none")
    retrain_owner: Mapped[str | None] = mapped_column(String(256), nullable=True)
    retrain_attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    next_try_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    job_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    why: Mapped[str | None] = mapped_column(Text, nullable=True)


class AlertEventRow(Base):
    """What each check decided for an alert that changed state or acted (event_id: webhook idempotency key)."""

    __tablename__ = "monitor_alert_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    event_id: Mapped[str | None] = mapped_column(String(64), nullable=True, unique=True)
    scope: Mapped[str | None] = mapped_column(String(512), nullable=True)
    model: Mapped[str | None] = mapped_column(String(256), nullable=True)
    rule: Mapped[str] = mapped_column(String(128), nullable=False, index=True)
    incident_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    event: Mapped[str] = mapped_column(String(16), nullable=False)
    value: Mapped[float | None] = mapped_column(Float, nullable=True)
    detail: Mapped[str] = mapped_column(Text, nullable=False, default="")
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, nullable=False)


class JobRow(Base):
    """A retraining job run as its own process (or submitted to a scheduler) by `llmops.monitor.jobs`.

    status: queued -> running -> succeeded | failed | cancelled; a failed attempt with attempts left goes
    back to queued with `next_try_at` (exponential backoff). `log_tail` keeps the end of the log of a failure.
    """

    __tablename__ = "monitor_jobs"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32), nullable=False, default="train")
    model: Mapped[str] = mapped_column(String(256), nullable=False, default="")
    incident_id: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)
    launcher: Mapped[str] = mapped_column(String(16), nullable=False)
    argv: Mapped[list[str]] = mapped_column(JSON, nullable=False)
    cancel_argv: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)
    cwd: Mapped[str | None] = mapped_column(Text, nullable=True)
    env: Mapped[dict[str, str] | None] = mapped_column(JSON, nullable=True)  # extra variables (never secrets)
    run_dir: Mapped[str | None] = mapped_column(Text, nullable=True)
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="queued")
    attempt: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=3)
    backoff_s: Mapped[float] = mapped_column(Float, nullable=False, default=60.0)
    next_try_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    pid: Mapped[int | None] = mapped_column(Integer, nullable=True)
    host: Mapped[str | None] = mapped_column(String(256), nullable=True)
    log_path: Mapped[str | None] = mapped_column(Text, nullable=True)
    exit_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    log_tail: Mapped[str | None] = mapped_column(Text, nullable=True)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, nullable=False)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)

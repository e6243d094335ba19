"""Monitoring tables: stored drift reference profiles and alert state that survives restarts."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import JSON, DateTime, Float, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from llmops.db.base import Base

MONITOR_HEAD = "monitor_0001"  # newest revision of the `monitor` alembic branch


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


class AlertStateRow(Base):
    """Per rule: firing or not, and when it last acted (cooldown + hysteresis across restarts)."""

    __tablename__ = "monitor_alert_state"

    rule: Mapped[str] = mapped_column(String(128), primary_key=True)
    state: Mapped[str] = mapped_column(String(16), nullable=False, default="ok")  # ok | firing
    last_value: Mapped[float | None] = mapped_column(Float, nullable=True)
    last_fired_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    fire_count: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, nullable=False)


class AlertEventRow(Base):
    """What each check decided for a rule that changed state or acted."""

    __tablename__ = "monitor_alert_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    rule: Mapped[str] = mapped_column(String(128), nullable=False, index=True)
    event: Mapped[str] = mapped_column(String(16), nullable=False)  # fired | suppressed | cleared
    value: Mapped[float | None] = mapped_column(Float, nullable=True)
    detail: Mapped[str] = mapped_column(Text, nullable=False, default="")
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, nullable=False)

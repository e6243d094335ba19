"""Registry tables on the shared `llmops.db.Base`.

A registered model owns a version counter (`next_version`) that only ever grows:
versions are numbered by incrementing it inside the registering transaction, so
numbers are dense under concurrency and never reused after a deletion. Version rows
are immutable in their identity columns and the alias audit log and promotion log are
append-only; the migration enforces both with database triggers.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, DateTime, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from llmops.db.base import Base


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class RegisteredModelRow(Base):
    __tablename__ = "registry_models"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True, nullable=False)
    description: Mapped[str] = mapped_column(Text, default="", nullable=False)
    next_version: Mapped[int] = mapped_column(Integer, default=1, nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, nullable=False)

    versions: Mapped[list[ModelVersionRow]] = relationship(back_populates="model", order_by="ModelVersionRow.version")


class ModelVersionRow(Base):
    __tablename__ = "registry_versions"
    __table_args__ = (UniqueConstraint("model_id", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("registry_models.id"), nullable=False, index=True)
    version: Mapped[int] = mapped_column(Integer, nullable=False)
    artifact_uri: Mapped[str] = mapped_column(String(512), nullable=False)  # relative to the artifact root
    artifact_sha256: Mapped[str] = mapped_column(String(64), nullable=False)
    artifact_bytes: Mapped[int] = mapped_column(BigInteger, nullable=False)  # 64-bit: models pass 2 GiB
    lineage: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict, nullable=False)
    tags: Mapped[dict[str, str]] = mapped_column(JSON, default=dict, nullable=False)
    description: Mapped[str] = mapped_column(Text, default="", nullable=False)
    created_by: Mapped[str] = mapped_column(String(128), nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, nullable=False)

    model: Mapped[RegisteredModelRow] = relationship(back_populates="versions")
    evals: Mapped[list[EvalResultRow]] = relationship(
        back_populates="version", cascade="all, delete-orphan", order_by="EvalResultRow.id"
    )


class EvalResultRow(Base):
    __tablename__ = "registry_eval_results"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("registry_versions.id", ondelete="CASCADE"), index=True)
    suite: Mapped[str] = mapped_column(String(256), nullable=False)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    results_uri: Mapped[str] = mapped_column(String(512), nullable=False)  # copy inside the artifact root
    results_sha256: Mapped[str] = mapped_column(String(64), nullable=False)
    model_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)  # the version hash the results carry
    attached_by: Mapped[str] = mapped_column(String(128), nullable=False)
    attached_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, nullable=False)

    version: Mapped[ModelVersionRow] = relationship(back_populates="evals")


class AliasRow(Base):
    __tablename__ = "registry_aliases"
    __table_args__ = (UniqueConstraint("model_id", "alias"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("registry_models.id"), nullable=False)
    alias: Mapped[str] = mapped_column(String(64), nullable=False)
    version: Mapped[int] = mapped_column(Integer, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, nullable=False)


class AliasEventRow(Base):
    """Append-only: one row per alias move (who, when, from, to, why)."""

    __tablename__ = "registry_alias_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_name: Mapped[str] = mapped_column(String(128), nullable=False, index=True)
    alias: Mapped[str] = mapped_column(String(64), nullable=False)
    from_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    to_version: Mapped[int | None] = mapped_column(Integer, nullable=True)  # None: alias removed
    actor: Mapped[str] = mapped_column(String(128), nullable=False)
    reason: Mapped[str] = mapped_column(Text, default="", nullable=False)
    forced: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, nullable=False)


class PromotionRow(Base):
    """Append-only: every promotion attempt with the gate report, accepted or refused."""

    __tablename__ = "registry_promotions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_name: Mapped[str] = mapped_column(String(128), nullable=False, index=True)
    version: Mapped[int] = mapped_column(Integer, nullable=False)
    alias: Mapped[str] = mapped_column(String(64), nullable=False)
    decision: Mapped[str] = mapped_column(String(16), nullable=False)  # accepted | refused | forced
    actor: Mapped[str] = mapped_column(String(128), nullable=False)
    reason: Mapped[str] = mapped_column(Text, default="", nullable=False)
    gates_file: Mapped[str | None] = mapped_column(Text, nullable=True)
    report: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, nullable=False)


class RegistryMetaRow(Base):
    """Key/value facts about this registry; `registry_id` names it in its artifact root's marker."""

    __tablename__ = "registry_meta"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text, nullable=False)


class AliasPolicyRow(Base):
    """Which aliases are protected and which gates guard them (`model_name` "*" = every model)."""

    __tablename__ = "registry_alias_policies"
    __table_args__ = (UniqueConstraint("model_name", "alias"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_name: Mapped[str] = mapped_column(String(128), nullable=False)
    alias: Mapped[str] = mapped_column(String(64), nullable=False)
    protected: Mapped[bool] = mapped_column(Boolean, default=True, nullable=False)
    gates: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)  # one AliasGates document
    gates_source: Mapped[str] = mapped_column(Text, default="", nullable=False)
    updated_by: Mapped[str] = mapped_column(String(128), nullable=False)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, nullable=False)


class AuditRow(Base):
    """Append-only: tag changes, deletions, forced alias moves and policy changes (who, what, why)."""

    __tablename__ = "registry_audit"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    action: Mapped[str] = mapped_column(String(32), nullable=False)
    model_name: Mapped[str] = mapped_column(String(128), nullable=False, index=True)
    version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    actor: Mapped[str] = mapped_column(String(128), nullable=False)
    reason: Mapped[str] = mapped_column(Text, default="", nullable=False)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict, nullable=False)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, nullable=False)


# The newest alembic revision of the `registry` branch; a test keeps it in sync.
REGISTRY_HEAD = "registry_0002"
APPEND_ONLY_TABLES = ("registry_alias_events", "registry_promotions", "registry_audit")
IMMUTABLE_VERSION_COLUMNS = ("model_id", "version", "artifact_uri", "artifact_sha256", "artifact_bytes", "lineage")

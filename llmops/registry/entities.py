"""Plain, immutable views of registry rows handed to callers (never live ORM objects)."""

from __future__ import annotations

import getpass
import os
import re
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from llmops.errors import UserError

RESERVED_ALIASES = frozenset({"latest"})
ALIAS_RE = re.compile(r"^[a-z][a-z0-9_\-]{0,63}$")
LINEAGE_KEYS = (
    "base_model_ref",
    "base_model_hash",
    "parent_version",
    "recipe",
    "recipe_hash",
    "dataset_fingerprints",
    "feedback_snapshot_id",
    "run_id",
)


class RegistryError(UserError):
    """A registry request that cannot be honoured (unknown model/version, bad alias...)."""


class RegistryNotFound(RegistryError):
    """An unknown model, version or alias (HTTP 404)."""


class PromotionRefused(RegistryError):
    """A promotion stopped by a gate rule; the message names the rule."""

    def __init__(self, message: str, report: dict[str, Any]) -> None:
        super().__init__(message)
        self.report = report


def validate_alias(alias: str, allow_reserved: bool = False) -> str:
    if not isinstance(alias, str) or not ALIAS_RE.match(alias):
        raise RegistryError(f"invalid alias {alias!r}: lower-case letters, digits, '_' or '-', starting with a letter")
    if alias in RESERVED_ALIASES and not allow_reserved:
        raise RegistryError(f"alias `{alias}` is reserved (it always means the newest version)")
    return alias


def default_actor() -> str:
    """Who is acting: $LLMOPS_ACTOR, else the OS user."""
    actor = os.environ.get("LLMOPS_ACTOR")
    if actor:
        return actor
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no passwd entry in some containers
        return "unknown"


def _iso(dt: datetime | None) -> str | None:
    return dt.isoformat() if dt else None


@dataclass(frozen=True)
class ModelVersion:
    name: str
    version: int
    artifact_uri: str
    artifact_path: Path
    sha256: str
    n_bytes: int
    lineage: dict[str, Any]
    tags: dict[str, str]
    description: str
    created_by: str
    created_at: datetime
    aliases: tuple[str, ...] = ()

    @property
    def ref(self) -> str:
        return f"registry:{self.name}/{self.version}"

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.update(artifact_path=str(self.artifact_path), created_at=_iso(self.created_at), aliases=list(self.aliases))
        d["ref"] = self.ref
        return d


@dataclass(frozen=True)
class EvalAttachment:
    id: int
    name: str
    version: int
    suite: str
    metrics: dict[str, Any]
    results_path: Path
    sha256: str
    attached_by: str
    attached_at: datetime
    results_uri: str = ""
    model_hash: str | None = None  # the version hash the results carried when attached

    def scores(self) -> dict[str, float]:
        """metric -> score, whatever shape the metric entry has."""
        out = {}
        for key, val in self.metrics.items():
            score = val.get("score") if isinstance(val, dict) else val
            if isinstance(score, (int, float)):
                out[key] = float(score)
        return out

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.update(results_path=str(self.results_path), attached_at=_iso(self.attached_at))
        return d


@dataclass(frozen=True)
class AliasEvent:
    id: int
    name: str
    alias: str
    from_version: int | None
    to_version: int | None
    actor: str
    reason: str
    forced: bool
    at: datetime

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["at"] = _iso(self.at)
        return d


@dataclass(frozen=True)
class PromotionRecord:
    id: int
    name: str
    version: int
    alias: str
    decision: str
    actor: str
    reason: str
    report: dict[str, Any] = field(default_factory=dict)
    at: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["at"] = _iso(self.at)
        return d


@dataclass(frozen=True)
class AuditEntry:
    """One append-only audit record: tag change, deletion, forced alias move, policy change."""

    id: int
    action: str
    name: str
    version: int | None
    actor: str
    reason: str
    detail: dict[str, Any]
    at: datetime

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["at"] = _iso(self.at)
        return d


@dataclass(frozen=True)
class AliasPolicy:
    """Whether an alias is protected and the gates (an `AliasGates` document) that guard it."""

    model: str  # a model name, or "*" for every model
    alias: str
    protected: bool
    gates: dict[str, Any]
    gates_source: str
    updated_by: str
    updated_at: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["updated_at"] = _iso(self.updated_at)
        return d


@dataclass(frozen=True)
class ModelSummary:
    name: str
    description: str
    n_versions: int
    latest_version: int | None
    next_version: int
    aliases: dict[str, int]
    created_at: datetime

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["created_at"] = _iso(self.created_at)
        return d

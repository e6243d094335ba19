"""Drift reference profiles stored with a registry version (fitted once, never replaced)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from llmops.db import session_factory
from llmops.errors import DataError
from llmops.monitor.drift import load_profile, profile_hash
from llmops.monitor.tables import MONITOR_HEAD, DriftReferenceRow
from llmops.db.schema import ensure_schema
from llmops.settings import database_url


def store_reference(name: str, version: int, profile: dict[str, Any], db_url: str | None = None) -> str:
    """Attach `profile` to registry version NAME/VERSION; returns its sha256.

    Storing the same profile again is a no-op; a different one is refused, because
    alerts and reports must keep comparing against the bins they started with.
    """
    from llmops.registry.api import get_version

    url = database_url(db_url)
    get_version(name, version, db_url=url)  # the version must exist
    ensure_schema(url, MONITOR_HEAD)
    digest = profile.get("sha256") or profile_hash(profile)
    with session_factory(url).begin() as s:
        row = s.scalar(select(DriftReferenceRow).where(DriftReferenceRow.model_name == name,
                                                       DriftReferenceRow.version == version))
        if row is not None:
            if row.sha256 != digest:
                raise DataError(f"{name}/{version} already has a drift reference (sha256 {row.sha256[:12]}); "
                                "references are fitted once and never replaced")
            return row.sha256
        s.add(DriftReferenceRow(model_name=name, version=version, profile=profile, sha256=digest))
    return digest


def load_reference(name: str, version: int, db_url: str | None = None) -> dict[str, Any]:
    url = database_url(db_url)
    ensure_schema(url, MONITOR_HEAD)
    with session_factory(url).begin() as s:
        row = s.scalar(select(DriftReferenceRow).where(DriftReferenceRow.model_name == name,
                                                       DriftReferenceRow.version == version))
        if row is None:
            raise DataError(f"no drift reference stored for {name}/{version} (llmops monitor profile ... --register)")
        return dict(row.profile)


def resolve_reference(spec: str, db_url: str | None = None) -> dict[str, Any]:
    """A profile from `registry:NAME/VERSION` (or NAME@ALIAS) or a profile JSON file."""
    if spec.startswith("registry:"):
        from llmops.models.refs import parse_ref
        from llmops.registry.api import get_version

        name, alias, version = parse_ref(spec).registry_parts
        if version is None:
            version = get_version(name, alias=alias, db_url=db_url).version
        return load_reference(name, version, db_url)
    return load_profile(spec)

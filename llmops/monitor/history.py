"""Monitoring over time, for the web UI and the CLI: drift per window, alert events, incident pages.

Drift over time is recomputed from what is stored, never from a second copy: for a registry
version with a drift reference (`llmops.monitor.references`), the prompts served in each
window (`llmops.feedback.queries.served_prompts`) are compared with that reference by the
same calibrated test `llmops monitor drift` uses. Lists are keyset pages on primary keys.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from functools import lru_cache
from typing import Any

from sqlalchemy import select

from llmops.db import session_factory
from llmops.db.schema import ensure_schema
from llmops.monitor.incidents import incident_dict
from llmops.monitor.tables import MONITOR_HEAD, AlertEventRow, DriftReferenceRow, IncidentRow
from llmops.settings import database_url

MAX_PAGE = 500


def _sessions(db_url: str | None):
    url = database_url(db_url)
    ensure_schema(url, MONITOR_HEAD)
    return session_factory(url)


def _aware(dt: datetime | None) -> datetime | None:
    return dt.replace(tzinfo=timezone.utc) if dt is not None and dt.tzinfo is None else dt


def _limit(limit: int) -> int:
    if limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")
    return min(int(limit), MAX_PAGE)


def list_references(db_url: str | None, model: str | None = None) -> list[dict[str, Any]]:
    """Registry versions with a stored drift reference (without the profile itself)."""
    with _sessions(db_url)() as s:
        q = select(DriftReferenceRow.model_name, DriftReferenceRow.version, DriftReferenceRow.sha256,
                   DriftReferenceRow.created_at).order_by(DriftReferenceRow.model_name, DriftReferenceRow.version)
        if model:
            q = q.where(DriftReferenceRow.model_name == model)
        return [{"model": m, "version": v, "sha256": h, "created_at": _aware(at).isoformat()}
                for m, v, h, at in s.execute(q)]


def drift_windows(db_url: str | None, name: str, version: int, window: timedelta, n_windows: int = 7,
                  now: datetime | None = None, max_prompts: int = 5000) -> list[dict[str, Any]]:
    """One row per window (oldest first): distinct served prompts compared with NAME/VERSION's reference.

    Windows are aligned to multiples of `window` since the epoch, the newest one still open. A closed
    window's verdict never changes (served items are stamped when recorded and a reference is never
    replaced), so it is computed once per process; only the open window is recomputed per call.
    Windows with fewer than two prompts have no verdict (`drift` None)."""
    from llmops.db.schema import ensure_all

    url = database_url(db_url)
    ensure_all(url)
    now = now or datetime.now(timezone.utc)
    step = window.total_seconds()
    if step <= 0:
        raise ValueError("window must be positive")
    open_end = datetime.fromtimestamp((now.timestamp() // step + 1) * step, timezone.utc)
    rows = []
    for i in range(n_windows, 0, -1):
        start, end = open_end - i * window, open_end - (i - 1) * window
        if end <= now:
            row = _closed_window(url, name, version, start, end, max_prompts)
        else:
            row = _drift_row(url, name, version, start, end, max_prompts)
        rows.append(dict(row, statistics=dict(row["statistics"]), drifted_features=list(row["drifted_features"])))
    return rows


def _drift_row(url: str, name: str, version: int, start: datetime, end: datetime, max_prompts: int
               ) -> dict[str, Any]:
    from llmops.feedback.queries import served_prompts
    from llmops.monitor.drift import compare

    prompts = list(dict.fromkeys(served_prompts(url, since=start, until=end, limit=max_prompts)))
    row: dict[str, Any] = {"window_start": start.isoformat(), "window_end": end.isoformat(),
                           "n_prompts": len(prompts), "drift": None, "decided": False, "max_psi": None,
                           "drifted_features": [], "statistics": {}}
    if len(prompts) >= 2:
        report = compare(_reference(url, name, version), prompts)
        psis = [f["psi"] for f in report["features"].values() if "psi" in f]
        row.update(drift=report["drift"], decided=report["decided"], max_psi=max(psis, default=None),
                   drifted_features=report["drifted_features"],
                   statistics={k: f["statistic"] for k, f in report["features"].items()})
    return row


@lru_cache(maxsize=4096)
def _closed_window(url: str, name: str, version: int, start: datetime, end: datetime, max_prompts: int
                   ) -> dict[str, Any]:
    return _drift_row(url, name, version, start, end, max_prompts)


@lru_cache(maxsize=64)
def _reference(url: str, name: str, version: int) -> dict[str, Any]:
    from llmops.monitor.references import load_reference

    return load_reference(name, version, url)


def _event_dict(e: AlertEventRow) -> dict[str, Any]:
    return {"id": e.id, "scope": e.scope, "model": e.model, "rule": e.rule, "incident_id": e.incident_id,
            "event": e.event, "value": e.value, "detail": e.detail, "at": _aware(e.at).isoformat()}


def alert_events_page(db_url: str | None, limit: int = 50, before: int | None = None, rule: str | None = None,
                      model: str | None = None) -> tuple[list[dict[str, Any]], int | None]:
    """Alert events (state changes, actions, errors), newest first, and the next page's cursor."""
    n = _limit(limit)
    with _sessions(db_url)() as s:
        q = select(AlertEventRow).order_by(AlertEventRow.id.desc()).limit(n + 1)
        if before is not None:
            q = q.where(AlertEventRow.id < before)
        if rule:
            q = q.where(AlertEventRow.rule == rule)
        if model is not None:
            q = q.where(AlertEventRow.model == model)
        rows = list(s.scalars(q))
    items = [_event_dict(e) for e in rows[:n]]
    return items, (items[-1]["id"] if len(rows) > n and items else None)


def incidents_page(db_url: str | None, limit: int = 50, before: int | None = None, model: str | None = None
                   ) -> tuple[list[dict[str, Any]], int | None]:
    """Incidents newest first (with their retraining state and job id), and the next page's cursor."""
    n = _limit(limit)
    with _sessions(db_url)() as s:
        q = select(IncidentRow).order_by(IncidentRow.id.desc()).limit(n + 1)
        if before is not None:
            q = q.where(IncidentRow.id < before)
        if model is not None:
            q = q.where(IncidentRow.model == model)
        rows = list(s.scalars(q))
    items = [incident_dict(r) for r in rows[:n]]
    return items, (items[-1]["id"] if len(rows) > n and items else None)

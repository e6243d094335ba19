"""Incidents and the right to retrain: the public query functions other layers use (never the tables).

An incident is one firing of an alert. Retraining is decided per incident, by whichever
process claims it first: `claim_retraining` runs in one transaction that locks the alert's
row (``SELECT ... FOR UPDATE`` on PostgreSQL; ``BEGIN IMMEDIATE`` on SQLite), so across
every watcher and loop sharing the database an incident retrains at most once, and the
cooldown — counted from when a training *started* — is checked and moved atomically.
An incident that cannot retrain yet (cooldown, too little data) *waits* and is retried;
it is abandoned only when its alert resolves first.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import func, select

from llmops.db import session_factory
from llmops.db.schema import ensure_schema
from llmops.errors import UserError
from llmops.monitor.tables import MONITOR_HEAD, AlertRow, IncidentRow, JobRow
from llmops.settings import database_url

OPEN_RETRAIN = ("none", "waiting", "claimed")


def _aware(dt: datetime | None) -> datetime | None:
    return dt.replace(tzinfo=timezone.utc) if dt is not None and dt.tzinfo is None else dt


def _iso(dt: datetime | None) -> str | None:
    return _aware(dt).isoformat() if dt is not None else None


def incident_dict(row: IncidentRow) -> dict[str, Any]:
    return {"id": row.id, "scope": row.scope, "model": row.model, "rule": row.rule, "opened_at": _iso(row.opened_at),
            "resolved_at": _iso(row.resolved_at), "value": row.value, "detail": row.detail, "retrain": row.retrain,
            "retrain_owner": row.retrain_owner, "retrain_attempts": row.retrain_attempts,
            "next_try_at": _iso(row.next_try_at), "job_id": row.job_id, "why": row.why}


def _sessions(db_url: str | None):
    url = database_url(db_url)
    ensure_schema(url, MONITOR_HEAD)
    return session_factory(url)


def get_incident(db_url: str | None, incident_id: int) -> dict[str, Any]:
    with _sessions(db_url)() as s:
        row = s.get(IncidentRow, incident_id)
        if row is None:
            raise UserError(f"no incident {incident_id}")
        return incident_dict(row)


def list_incidents(db_url: str | None, scope: str | None = None, rules: list[str] | None = None,
                   after_id: int = 0, unfinished: bool = False, limit: int = 1000) -> list[dict[str, Any]]:
    """Incidents (oldest first); `unfinished`: retraining not yet done, failed or abandoned."""
    with _sessions(db_url)() as s:
        q = select(IncidentRow).where(IncidentRow.id > after_id).order_by(IncidentRow.id).limit(limit)
        if scope is not None:
            q = q.where(IncidentRow.scope == scope)
        if rules is not None:
            q = q.where(IncidentRow.rule.in_(sorted(rules)))
        if unfinished:
            q = q.where(IncidentRow.retrain.in_(OPEN_RETRAIN))
        return [incident_dict(r) for r in s.scalars(q)]


def max_incident_id(db_url: str | None) -> int:
    with _sessions(db_url)() as s:
        return int(s.scalar(select(func.max(IncidentRow.id))) or 0)


def claim_retraining(db_url: str | None, incident_id: int, owner: str, cooldown: timedelta,
                     now: datetime | None = None, model_cooldown: timedelta | None = None,
                     model: str | None = None) -> tuple[bool, str]:
    """Try to win the right to retrain for this incident. Returns (claimed, why).

    Refused for good when another process already claimed it or the incident is finished;
    refused *for now* (the incident waits, `next_try_at` set) inside the alert's cooldown or,
    with `model_cooldown`, when any training job of `model` (default: the incident's) started
    within it — whichever rule or rules file asked for it.
    """
    now = now or datetime.now(timezone.utc)
    with _sessions(db_url).begin() as s:
        inc = s.get(IncidentRow, incident_id)
        if inc is None:
            raise UserError(f"no incident {incident_id}")
        alert = s.scalar(select(AlertRow).where(AlertRow.id == inc.alert_id).with_for_update())
        inc = s.scalar(select(IncidentRow).where(IncidentRow.id == incident_id).with_for_update())
        if inc.retrain == "claimed":
            return (inc.retrain_owner == owner), f"claimed by {inc.retrain_owner}"
        if inc.retrain not in ("none", "waiting"):
            return False, f"retraining already {inc.retrain}"
        if inc.resolved_at is not None:
            inc.retrain, inc.why = "abandoned", "the alert resolved before retraining could start"
            return False, inc.why
        inc.retrain_attempts += 1
        last = _aware(alert.last_training_at)
        if last is not None and now - last < cooldown:
            inc.retrain, inc.next_try_at = "waiting", last + cooldown
            inc.why = f"cooldown: a retraining for this alert started at {last.isoformat()} (cooldown {cooldown})"
            return False, inc.why
        model = model or inc.model
        if model_cooldown and model:
            recent = s.scalar(select(func.max(JobRow.created_at)).where(
                JobRow.model == model, JobRow.kind == "train", JobRow.status != "cancelled",
                JobRow.created_at >= now - model_cooldown))
            if recent is not None:
                inc.retrain, inc.next_try_at = "waiting", _aware(recent) + model_cooldown
                inc.why = f"cooldown: a training of {model} started at {_aware(recent).isoformat()}"
                return False, inc.why
        inc.retrain, inc.retrain_owner, inc.next_try_at = "claimed", owner, None
        inc.why = f"claimed by {owner} at {now.isoformat()}"
        alert.last_training_at = now  # the cooldown starts when training starts
        return True, inc.why


def defer_retraining(db_url: str | None, incident_id: int, why: str, retry_at: datetime) -> None:
    """The incident cannot retrain yet (e.g. too little feedback): it waits and is retried at `retry_at`.

    A claim taken for it is released, and the alert's cooldown is not consumed (nothing trained).
    """
    with _sessions(db_url).begin() as s:
        inc = s.scalar(select(IncidentRow).where(IncidentRow.id == incident_id).with_for_update())
        if inc.retrain == "claimed":
            alert = s.scalar(select(AlertRow).where(AlertRow.id == inc.alert_id).with_for_update())
            if inc.job_id is None:
                alert.last_training_at = None
        inc.retrain, inc.why, inc.next_try_at, inc.retrain_owner = "waiting", why, retry_at, None


def set_incident_job(db_url: str | None, incident_id: int, job_id: str) -> None:
    with _sessions(db_url).begin() as s:
        s.get(IncidentRow, incident_id).job_id = job_id


def finish_retraining(db_url: str | None, incident_id: int, status: str, why: str) -> None:
    """done | failed | abandoned: the incident will not retrain again."""
    if status not in ("done", "failed", "abandoned"):
        raise ValueError(status)
    with _sessions(db_url).begin() as s:
        inc = s.get(IncidentRow, incident_id)
        inc.retrain, inc.why, inc.next_try_at = status, why, None


def alert_states(db_url: str | None, scope: str | None = None) -> list[dict[str, Any]]:
    with _sessions(db_url)() as s:
        q = select(AlertRow).order_by(AlertRow.id)
        if scope is not None:
            q = q.where(AlertRow.scope == scope)
        return [{"scope": a.scope, "model": a.model, "rule": a.rule, "state": a.state, "breaches": a.breaches,
                 "last_value": a.last_value, "state_since": _iso(a.state_since), "fire_count": a.fire_count,
                 "last_training_at": _iso(a.last_training_at), "errors": a.errors,
                 "next_check_at": _iso(a.next_check_at), "last_error": a.last_error} for a in s.scalars(q)]

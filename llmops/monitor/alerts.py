"""Evaluating alert rules: hysteresis + cooldown with state in the database, then actions.

One *incident* is the time a rule's signal spends above `clear` after reaching
`trigger`. The decision to fire is taken and committed in one transaction that holds
the rule's state row (``SELECT ... FOR UPDATE`` on PostgreSQL; SQLite transactions are
``BEGIN IMMEDIATE``), and actions run only after that commit: a restarted or concurrent
watcher sees the incident as already handled, so an incident launches at most one
retraining, and a new incident inside the cooldown launches none.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from llmops.db import session_factory
from llmops.errors import ConfigError, UserError
from llmops.monitor.tables import MONITOR_HEAD, AlertEventRow, AlertStateRow
from llmops.monitor.rules import LogAction, RetrainAction, RulesFile, WebhookAction, _Rule
from llmops.db.schema import ensure_schema
from llmops.settings import database_url, llmops_home

log = logging.getLogger(__name__)


@dataclass
class RuleOutcome:
    rule: str
    kind: str
    value: float | None
    detail: str
    state: str  # ok | firing
    event: str | None  # fired | suppressed | cleared | None
    actions: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _aware(dt: datetime | None) -> datetime | None:
    return dt.replace(tzinfo=timezone.utc) if dt is not None and dt.tzinfo is None else dt


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """HMAC-SHA256 over ``timestamp.body``; receivers recompute it and reject stale timestamps."""
    return "sha256=" + hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


class AlertEngine:
    def __init__(self, rules: RulesFile, db_url: str | None = None) -> None:
        self.rules = rules
        self.url = database_url(db_url)
        ensure_schema(self.url, MONITOR_HEAD)
        self._sessions = session_factory(self.url)
        self.launched: list[subprocess.Popen] = []  # children started by retrain actions
        for rule in rules.rules:
            for action in rule.actions:
                if isinstance(action, WebhookAction) and not os.environ.get(action.secret_env):
                    raise ConfigError(f"rule `{rule.name}`: webhook secret variable ${action.secret_env} is not set")

    def check(self, now: datetime | None = None) -> list[RuleOutcome]:
        """Evaluate every rule once (what `llmops monitor check` does)."""
        now = now or datetime.now(timezone.utc)
        outcomes = []
        for rule in self.rules.rules:
            try:
                value, detail = rule.measure(self.url, now)
            except UserError as exc:  # a broken source must not stop the other rules
                value, detail = None, f"error: {exc}"
            outcome = self._transition(rule, value, detail, now)
            if outcome.event == "fired":
                outcome.actions = [self._act(rule, a, outcome, now) for a in rule.actions]
            outcomes.append(outcome)
        return outcomes

    def _transition(self, rule: _Rule, value: float | None, detail: str, now: datetime) -> RuleOutcome:
        with self._sessions.begin() as s:
            # Create the row if needed without racing another watcher, then lock it.
            dialect = s.get_bind().dialect.name
            insert = pg_insert if dialect == "postgresql" else sqlite_insert
            s.execute(insert(AlertStateRow).values(rule=rule.name, state="ok", fire_count=0, updated_at=now)
                      .on_conflict_do_nothing(index_elements=["rule"]))
            st = s.scalar(select(AlertStateRow).where(AlertStateRow.rule == rule.name).with_for_update())
            event = None
            if value is not None:
                last = _aware(st.last_fired_at)
                if st.state == "ok" and value >= rule.trigger:
                    st.state = "firing"
                    if last is not None and now - last < rule.cooldown:
                        event = "suppressed"
                    else:
                        event = "fired"
                        st.last_fired_at, st.fire_count = now, st.fire_count + 1
                elif st.state == "firing" and value <= rule.clear:
                    st.state, event = "ok", "cleared"
                st.last_value = value
            st.updated_at = now
            if event:
                s.add(AlertEventRow(rule=rule.name, event=event, value=value, detail=detail, at=now))
            return RuleOutcome(rule.name, rule.kind, value, detail, st.state, event)

    def _act(self, rule: _Rule, action: Any, outcome: RuleOutcome, now: datetime) -> dict[str, Any]:
        payload = {"rule": rule.name, "kind": rule.kind, "value": outcome.value, "detail": outcome.detail,
                   "at": now.isoformat()}
        try:
            if isinstance(action, LogAction):
                log.warning("alert %s fired: value %.4g (%s)", rule.name, outcome.value, outcome.detail)
                return {"type": "log", "ok": True}
            if isinstance(action, WebhookAction):
                return self._webhook(action, payload)
            if isinstance(action, RetrainAction):
                return self._retrain(rule, action, outcome, now)
        except Exception as exc:  # noqa: BLE001 - an action failure is recorded, never fatal to the watcher
            result = {"type": action.type, "ok": False, "error": f"{type(exc).__name__}: {exc}"}
            self._event(rule.name, "action_failed", outcome.value, json.dumps(result), now)
            return result
        raise AssertionError(action)

    def _event(self, rule: str, event: str, value: float | None, detail: str, now: datetime) -> None:
        with self._sessions.begin() as s:
            s.add(AlertEventRow(rule=rule, event=event, value=value, detail=detail, at=now))

    def _webhook(self, action: WebhookAction, payload: dict[str, Any]) -> dict[str, Any]:
        import httpx

        body = json.dumps(payload, sort_keys=True).encode()
        ts = str(int(time.time()))
        headers = {"Content-Type": "application/json", "X-LLMOps-Timestamp": ts,
                   "X-LLMOps-Signature": sign(os.environ[action.secret_env], ts, body)}
        resp = httpx.post(action.url, content=body, headers=headers, timeout=action.timeout_s)
        resp.raise_for_status()
        return {"type": "webhook", "ok": True, "status": resp.status_code}

    def _retrain(self, rule: _Rule, action: RetrainAction, outcome: RuleOutcome, now: datetime) -> dict[str, Any]:
        if action.command:
            argv = [part.replace("{recipe}", action.recipe) for part in action.command]
        else:
            argv = [sys.executable, "-m", "llmops.cli.main", "train", action.recipe, *action.overrides]
        logs = llmops_home() / "monitor" / "launches"
        logs.mkdir(parents=True, exist_ok=True)
        log_path = logs / f"{rule.name}-{now:%Y%m%dT%H%M%S}.log"
        env = os.environ | {"LLMOPS_ALERT_RULE": rule.name, "LLMOPS_ALERT_VALUE": repr(outcome.value)}
        with open(log_path, "ab") as out:
            proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                                    start_new_session=True)
        self._event(rule.name, "launched", outcome.value, json.dumps({"argv": argv, "pid": proc.pid}), now)
        log.warning("alert %s launched retraining (pid %d): %s; log %s", rule.name, proc.pid, " ".join(argv), log_path)
        self.launched.append(proc)
        return {"type": "retrain", "ok": True, "pid": proc.pid, "argv": argv, "log": str(log_path)}

    def events(self, rule: str | None = None) -> list[dict[str, Any]]:
        with self._sessions.begin() as s:
            q = select(AlertEventRow).order_by(AlertEventRow.id)
            if rule:
                q = q.where(AlertEventRow.rule == rule)
            return [{"rule": e.rule, "event": e.event, "value": e.value, "detail": e.detail,
                     "at": _aware(e.at).isoformat()} for e in s.scalars(q)]


def last_event_id(db_url: str) -> int:
    """Id of the newest alert event (0 when none): where a new consumer starts reading."""
    ensure_schema(db_url, MONITOR_HEAD)
    with session_factory(db_url)() as s:
        return int(s.scalar(select(func.max(AlertEventRow.id))) or 0)


def fired_events(db_url: str, after_id: int, rules: list[str]) -> list[dict[str, Any]]:
    """`fired` events of `rules` newer than `after_id`, oldest first."""
    ensure_schema(db_url, MONITOR_HEAD)
    with session_factory(db_url)() as s:
        rows = s.scalars(select(AlertEventRow).where(AlertEventRow.id > after_id, AlertEventRow.event == "fired",
                                                     AlertEventRow.rule.in_(sorted(rules)))
                         .order_by(AlertEventRow.id)).all()
        return [{"id": r.id, "rule": r.rule, "value": r.value, "detail": r.detail, "at": _aware(r.at).isoformat()}
                for r in rows]


def watch(engine: AlertEngine, interval_s: float, iterations: int | None = None, on_check=None) -> None:
    """Run `check` every `interval_s` seconds (forever, or `iterations` times)."""
    done = 0
    while iterations is None or done < iterations:
        started = time.monotonic()
        outcomes = engine.check()
        if on_check:
            on_check(outcomes)
        done += 1
        if iterations is None or done < iterations:
            time.sleep(max(0.0, interval_s - (time.monotonic() - started)))


def reap(engine: AlertEngine, timeout: float = 30.0) -> list[int]:
    """Wait for launched children (tests and `check --wait`); returns their exit codes."""
    codes = [p.wait(timeout=timeout) for p in engine.launched]
    engine.launched.clear()
    return codes


__all__ = ["AlertEngine", "RuleOutcome", "reap", "sign", "watch"]

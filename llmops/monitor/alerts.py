"""Evaluating alert rules: one state machine per (rules scope, model, rule), kept in the database.

States (docs/monitoring.md has the diagram)::

    ok --breach--> pending --breach x for_checks--> firing --value <= clear--> resolved --> ok
     \\________________ for_checks == 1 ______________/  |  (re-notified every `renotify`)

A *breach* is a value >= `trigger`; a check with no value (not enough data) changes nothing;
a pending alert whose value drops below `trigger` goes back to ok. Entering ``firing`` opens
an incident and notifies (log / webhook); ``resolved`` notifies again and closes it. The
decision is committed in one transaction that locks the alert's row (``SELECT ... FOR
UPDATE`` on PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite) before any action runs, so a
restarted or concurrent watcher sees it as already taken. Retraining is per incident,
through `llmops.monitor.incidents.claim_retraining` (at most once per incident, cooldown
from when training started, waiting incidents retried) and runs as a job
(`llmops.monitor.jobs`): the watcher keeps checking while it trains.

A rule whose check raises is recorded (event ``error``) and backed off exponentially; it
never stops the other rules or the watcher.
"""

from __future__ import annotations

import json
import logging
import os
import time
import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from llmops.db import session_factory
from llmops.db.schema import ensure_schema
from llmops.errors import ConfigError
from llmops.monitor import incidents as inc
from llmops.monitor.notify import notify, sign
from llmops.monitor.rules import RetrainAction, RulesFile, WebhookAction, _Rule
from llmops.monitor.tables import MONITOR_HEAD, AlertEventRow, AlertRow, IncidentRow
from llmops.settings import database_url

log = logging.getLogger(__name__)


@dataclass
class RuleOutcome:
    rule: str
    kind: str
    value: float | None
    detail: str
    state: str  # ok | pending | firing | resolved
    event: str | None  # pending | ok | fired | renotified | resolved | error | None
    model: str = ""
    incident_id: int | None = None
    actions: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _aware(dt: datetime | None) -> datetime | None:
    return dt.replace(tzinfo=timezone.utc) if dt is not None and dt.tzinfo is None else dt


class AlertEngine:
    def __init__(self, rules: RulesFile, db_url: str | None = None, owner: str | None = None,
                 error_backoff: timedelta = timedelta(seconds=60), max_backoff: timedelta = timedelta(hours=1)) -> None:
        self.rules = rules
        self.scope = rules.scope or "default"
        self.url = database_url(db_url)
        ensure_schema(self.url, MONITOR_HEAD)
        self._sessions = session_factory(self.url)
        self.owner = owner or f"monitor:{self.scope}"  # stable across restarts: a restarted watcher keeps its claims
        self.error_backoff, self.max_backoff = error_backoff, max_backoff
        self.launched: list[str] = []  # job ids started by retrain actions of this engine
        self._jobs = None
        for rule in rules.rules:
            for action in rule.actions:
                if isinstance(action, WebhookAction) and not os.environ.get(action.secret_env):
                    raise ConfigError(f"rule `{rule.name}`: webhook secret variable ${action.secret_env} is not set")

    @property
    def jobs(self):
        if self._jobs is None:
            from llmops.monitor.jobs import JobStore

            self._jobs = JobStore(self.url)
        return self._jobs

    # ------------------------------------------------------------------ checking
    def check(self, now: datetime | None = None) -> list[RuleOutcome]:
        """Evaluate every rule once, retry waiting incidents, follow running jobs."""
        now = now or datetime.now(timezone.utc)
        outcomes = [self._check_rule(rule, now) for rule in self.rules.rules]
        self._retry_waiting(now)
        if self._jobs is not None or any(self._retrain_actions(r) for r in self.rules.rules):
            self._follow_jobs(now)
        return outcomes

    def _alert_id(self, rule: _Rule, now: datetime) -> int:
        with self._sessions.begin() as s:  # create the row without racing another watcher
            insert = pg_insert if s.get_bind().dialect.name == "postgresql" else sqlite_insert
            s.execute(insert(AlertRow).values(scope=self.scope, model=rule.model, rule=rule.name, state="ok",
                                              breaches=0, fire_count=0, errors=0, state_since=now, updated_at=now)
                      .on_conflict_do_nothing(index_elements=["scope", "model", "rule"]))
            return s.scalar(select(AlertRow.id).where(AlertRow.scope == self.scope, AlertRow.model == rule.model,
                                                      AlertRow.rule == rule.name))

    def _check_rule(self, rule: _Rule, now: datetime) -> RuleOutcome:
        alert_id = self._alert_id(rule, now)
        with self._sessions() as s:
            row = s.get(AlertRow, alert_id)
            state, next_check = row.state, _aware(row.next_check_at)
        if next_check is not None and now < next_check:
            return RuleOutcome(rule.name, rule.kind, None, f"backing off after errors until {next_check.isoformat()}",
                               state, None, rule.model)
        try:
            value, detail = rule.measure(self.url, now)
        except Exception as exc:  # noqa: BLE001 - one broken check must never stop the watcher
            return self._error(rule, alert_id, f"{type(exc).__name__}: {exc}", now)
        outcome = self._transition(rule, alert_id, value, detail, now)
        if outcome.event in ("fired", "renotified", "resolved"):
            outcome.actions = self._notify(rule, outcome, now)
        if outcome.event == "fired":
            for action in self._retrain_actions(rule):
                outcome.actions.append(self._retrain(rule, action, outcome.incident_id, now))
        return outcome

    def _error(self, rule: _Rule, alert_id: int, message: str, now: datetime) -> RuleOutcome:
        with self._sessions.begin() as s:
            row = s.scalar(select(AlertRow).where(AlertRow.id == alert_id).with_for_update())
            row.errors += 1
            delay = min(self.error_backoff * 2 ** (row.errors - 1), self.max_backoff)
            row.next_check_at, row.last_error, row.updated_at = now + delay, message, now
            state = row.state
            s.add(AlertEventRow(event_id=uuid.uuid4().hex, scope=self.scope, model=rule.model, rule=rule.name,
                                event="error", value=None, detail=f"{message} (retry in {delay})", at=now))
        log.error("alert rule %s: check failed (%s); retry in %s", rule.name, message, delay)
        return RuleOutcome(rule.name, rule.kind, None, f"error: {message}", state, "error", rule.model)

    def _transition(self, rule: _Rule, alert_id: int, value: float | None, detail: str, now: datetime) -> RuleOutcome:
        with self._sessions.begin() as s:
            st = s.scalar(select(AlertRow).where(AlertRow.id == alert_id).with_for_update())
            st.errors, st.next_check_at, st.last_error = 0, None, None
            before, event, incident_id = st.state, None, None
            open_incident = s.scalar(select(IncidentRow).where(IncidentRow.alert_id == alert_id,
                                                               IncidentRow.resolved_at.is_(None))
                                     .order_by(IncidentRow.id.desc()).limit(1))
            if value is not None:
                breach = value >= rule.trigger
                if st.state == "firing":
                    if value <= rule.clear:
                        st.state, st.breaches, event = "resolved", 0, "resolved"
                        if open_incident is not None:
                            open_incident.resolved_at = now
                    elif rule.renotify and now - (_aware(st.last_notified_at) or now) >= rule.renotify:
                        event, st.last_notified_at = "renotified", now
                elif breach:
                    st.breaches += 1
                    if st.breaches >= rule.for_checks:
                        st.state, event, st.fire_count, st.last_notified_at = "firing", "fired", st.fire_count + 1, now
                        open_incident = IncidentRow(alert_id=alert_id, scope=self.scope, model=rule.model,
                                                    rule=rule.name, opened_at=now, value=value, detail=detail,
                                                    retrain="none", retrain_attempts=0)
                        s.add(open_incident)
                        s.flush()
                    elif st.state != "pending":
                        st.state, event = "pending", "pending"
                else:
                    if st.state == "pending":
                        event = "ok"
                    st.state, st.breaches = "ok", 0
                st.last_value = value
            if st.state != before:
                st.state_since = now
            st.updated_at = now
            if open_incident is not None and (event or st.state == "firing"):
                incident_id = open_incident.id
            if event:
                s.add(AlertEventRow(event_id=uuid.uuid4().hex, scope=self.scope, model=rule.model, rule=rule.name,
                                    incident_id=incident_id, event=event, value=value, detail=detail, at=now))
            return RuleOutcome(rule.name, rule.kind, value, detail, st.state, event, rule.model, incident_id)

    # ------------------------------------------------------------------ acting
    def _last_event_id(self, rule: _Rule, event: str) -> str:
        with self._sessions() as s:
            return s.scalar(select(AlertEventRow.event_id).where(
                AlertEventRow.scope == self.scope, AlertEventRow.rule == rule.name, AlertEventRow.model == rule.model,
                AlertEventRow.event == event).order_by(AlertEventRow.id.desc()).limit(1))

    def _notify(self, rule: _Rule, outcome: RuleOutcome, now: datetime) -> list[dict[str, Any]]:
        payload = {"event_id": self._last_event_id(rule, outcome.event), "event": outcome.event, "rule": rule.name,
                   "kind": rule.kind, "model": rule.model, "scope": self.scope, "incident_id": outcome.incident_id,
                   "state": outcome.state, "value": outcome.value, "detail": outcome.detail, "at": now.isoformat()}
        results = []
        for action in rule.actions:
            try:
                result = notify(action, payload)
            except Exception as exc:  # noqa: BLE001 - an action failure is recorded, never fatal to the watcher
                result = {"type": action.type, "ok": False, "error": f"{type(exc).__name__}: {exc}"}
            if result is None:
                continue
            if not result["ok"]:
                self._event(rule, "action_failed", outcome.value, json.dumps(result), now, outcome.incident_id)
            results.append(result)
        return results

    def _event(self, rule: _Rule, event: str, value: float | None, detail: str, now: datetime,
               incident_id: int | None = None) -> None:
        with self._sessions.begin() as s:
            s.add(AlertEventRow(event_id=uuid.uuid4().hex, scope=self.scope, model=rule.model, rule=rule.name,
                                incident_id=incident_id, event=event, value=value, detail=detail, at=now))

    @staticmethod
    def _retrain_actions(rule: _Rule) -> list[RetrainAction]:
        return [a for a in rule.actions if isinstance(a, RetrainAction)]

    def _retrain(self, rule: _Rule, action: RetrainAction, incident_id: int, now: datetime) -> dict[str, Any]:
        from llmops.monitor.jobs import JobSpec, train_argv

        claimed, why = inc.claim_retraining(self.url, incident_id, self.owner, rule.cooldown, now)
        if not claimed:
            self._event(rule, "waiting", None, why, now, incident_id)
            return {"type": "retrain", "ok": False, "waiting": why}
        existing = inc.get_incident(self.url, incident_id)["job_id"]
        if existing:  # claimed and submitted before a restart
            return {"type": "retrain", "ok": True, "job_id": existing}
        argv = train_argv(action.recipe, action.overrides, action.launcher, action.num_processes, action.command)
        job_id = self.jobs.submit(JobSpec(argv=argv, launcher=action.launcher, model=rule.model,
                                          incident_id=incident_id, cancel_argv=action.cancel_command,
                                          max_attempts=action.max_attempts,
                                          backoff_s=action.backoff.total_seconds(),
                                          env={"LLMOPS_ALERT_RULE": rule.name,
                                               "LLMOPS_INCIDENT_ID": str(incident_id)}), now)
        inc.set_incident_job(self.url, incident_id, job_id)
        self.jobs.tick(now)
        self.launched.append(job_id)
        self._event(rule, "launched", None, json.dumps({"job_id": job_id, "argv": argv}), now, incident_id)
        log.warning("alert %s: incident %s launched retraining job %s: %s", rule.name, incident_id, job_id,
                    " ".join(argv))
        return {"type": "retrain", "ok": True, "job_id": job_id, "argv": argv}

    def _retry_waiting(self, now: datetime) -> None:
        """Incidents of this scope that wait to retrain (cooldown) get another try once it is due."""
        by_name = {r.name: r for r in self.rules.rules}
        for incident in inc.list_incidents(self.url, scope=self.scope, unfinished=True):
            rule = by_name.get(incident["rule"])
            if rule is None or incident["retrain"] != "waiting" or not self._retrain_actions(rule):
                continue
            due = incident["next_try_at"]
            if due is None or datetime.fromisoformat(due) <= now:
                for action in self._retrain_actions(rule):
                    self._retrain(rule, action, incident["id"], now)

    def _follow_jobs(self, now: datetime) -> None:
        """Start and poll jobs; an incident whose job ended is done (or failed, with the log tail)."""
        self.jobs.tick(now)
        for incident in inc.list_incidents(self.url, scope=self.scope, unfinished=True):
            if incident["retrain"] != "claimed" or incident["retrain_owner"] != self.owner or not incident["job_id"]:
                continue
            job = self.jobs.get(incident["job_id"])
            if job["status"] == "succeeded":
                inc.finish_retraining(self.url, incident["id"], "done", f"job {job['id']} succeeded")
            elif job["status"] in ("failed", "cancelled"):
                inc.finish_retraining(self.url, incident["id"], "failed",
                                      f"job {job['id']} {job['status']}: {(job['log_tail'] or '')[-500:]}")

    # ------------------------------------------------------------------ reading
    def events(self, rule: str | None = None) -> list[dict[str, Any]]:
        with self._sessions() as s:
            q = select(AlertEventRow).where(AlertEventRow.scope == self.scope).order_by(AlertEventRow.id)
            if rule:
                q = q.where(AlertEventRow.rule == rule)
            return [{"event_id": e.event_id, "rule": e.rule, "model": e.model, "incident_id": e.incident_id,
                     "event": e.event, "value": e.value, "detail": e.detail, "at": _aware(e.at).isoformat()}
                    for e in s.scalars(q)]


def watch(engine: AlertEngine, interval_s: float, iterations: int | None = None, on_check=None,
          max_error_sleep_s: float = 300.0) -> None:
    """Run `check` every `interval_s` seconds (forever, or `iterations` times).

    An unexpected failure of a whole check (the database is down) is logged and retried with
    backoff; it never ends the watch.
    """
    done = failures = 0
    while iterations is None or done < iterations:
        started = time.monotonic()
        try:
            outcomes = engine.check()
            failures = 0
            if on_check:
                on_check(outcomes)
        except Exception:  # noqa: BLE001
            failures += 1
            log.exception("monitor check failed (%d in a row); retrying", failures)
        done += 1
        if iterations is None or done < iterations:
            pause = interval_s if not failures else min(interval_s * 2 ** (failures - 1), max_error_sleep_s)
            time.sleep(max(0.0, pause - (time.monotonic() - started)))


def reap(engine: AlertEngine, timeout: float = 60.0) -> list[int | None]:
    """Wait for the jobs this engine launched (tests and `check --wait`); returns their exit codes."""
    codes = [engine.jobs.wait(job_id, timeout)["exit_code"] for job_id in engine.launched]
    engine.launched.clear()
    engine._follow_jobs(datetime.now(timezone.utc))  # record the finished jobs on their incidents
    return codes


__all__ = ["AlertEngine", "RuleOutcome", "reap", "sign", "watch"]

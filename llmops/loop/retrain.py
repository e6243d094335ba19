"""`llmops loop`: retrain when a monitoring alert fires, promote only through the gates.

Each tick:

1. (optional) write the recently served prompts to the file the drift rules read;
2. evaluate the alert rules with the monitor's `AlertEngine` — hysteresis and the rule's
   cooldown live in the database, and a firing is committed *before* anything acts on it;
3. every ``fired`` event of a watched rule is an **incident** (its id is the event's
   database id). An incident is handled through steps recorded one by one in
   ``<state_dir>/incidents/<id>.json``: export fresh feedback → train the configured
   recipe (resumable run directory) → evaluate → staging gates → production gates, and
   only if better. A restart re-reads the record and continues at the first unfinished
   step; training resumes from its checkpoint, registration is found again by the run's
   id, and promotion is skipped when the version already holds the alias, so nothing is
   done twice. A loop-level ``cooldown`` also spaces retrainings triggered by different
   rules. A file lock keeps two loops off one state directory.
"""

from __future__ import annotations

import fcntl
import json
import logging
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any


from llmops.errors import UserError
from llmops.loop import steps
from llmops.loop.progress import write_json_atomic
from llmops.loop.retrain_config import LoopConfig
from llmops.settings import database_url

log = logging.getLogger(__name__)


class RetrainLoop:
    def __init__(self, config: LoopConfig, db_url: str | None = None) -> None:
        from llmops.monitor.alerts import AlertEngine
        from llmops.monitor.rules import load_rules

        self.cfg = config
        self.db = database_url(db_url or config.db)
        self.state_dir = Path(config.state_dir)
        self.incidents = self.state_dir / "incidents"
        self.incidents.mkdir(parents=True, exist_ok=True)
        self.engine = AlertEngine(load_rules(config.alerts), self.db)
        names = {r.name for r in self.engine.rules.rules}
        unknown = sorted(set(config.retrain.rules) - names)
        if unknown:
            raise UserError(f"retrain.rules names unknown rule(s) {', '.join(unknown)} (rules: {', '.join(sorted(names))})")
        self.watched = set(config.retrain.rules) or names

    # ------------------------------------------------------------------ state

    @contextmanager
    def _locked(self):
        lock = (self.state_dir / "loop.lock").open("w")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UserError(f"another `llmops loop` is running on {self.state_dir}") from None
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
            lock.close()

    def _loop_state(self) -> dict[str, Any]:
        path = self.state_dir / "loop.json"
        if path.exists():
            return json.loads(path.read_text())
        # Incidents that fired before this loop existed are not ours to handle.
        state = {"created_at": _now().isoformat(), "after_event_id": self._max_event_id(), "last_retrain_at": None}
        write_json_atomic(path, state)
        return state

    def _save_loop_state(self, state: dict[str, Any]) -> None:
        write_json_atomic(self.state_dir / "loop.json", state)

    def _max_event_id(self) -> int:
        from llmops.monitor.alerts import last_event_id

        return last_event_id(self.db)

    def _fired_since(self, after_id: int) -> list[dict[str, Any]]:
        from llmops.monitor.alerts import fired_events

        return fired_events(self.db, after_id, sorted(self.watched))

    def _record(self, incident_id: int) -> dict[str, Any] | None:
        path = self.incidents / f"{incident_id}.json"
        return json.loads(path.read_text()) if path.exists() else None

    def _save(self, record: dict[str, Any]) -> None:
        write_json_atomic(self.incidents / f"{record['incident']}.json", record)

    # ------------------------------------------------------------------ tick

    def tick(self, now: datetime | None = None) -> dict[str, Any]:
        """One pass: measure, fire, handle every open incident. Returns what happened."""
        now = now or _now()
        with self._locked():
            state = self._loop_state()
            if self.cfg.production_prompts:
                pp = self.cfg.production_prompts
                steps.served_prompts(self.db, Path(pp.path), since=now - pp.window, limit=pp.limit)
            outcomes = [o.to_dict() for o in self.engine.check(now)]
            handled = []
            pending = [e for e in self._fired_since(state["after_event_id"])
                       if (self._record(e["id"]) or {}).get("status") not in ("done", "skipped", "superseded")]
            for older in pending[:-1]:  # one retraining answers every incident open now
                record = self._record(older["id"]) or self._new_record(older)
                if record.get("steps"):
                    continue  # already started: finish it below rather than abandoning work
                record.update(status="superseded", why=f"superseded by incident {pending[-1]['id']}")
                self._save(record)
                handled.append(record)
            for event in pending:
                record = self._record(event["id"]) or self._new_record(event)
                if record["status"] == "superseded":
                    continue
                last = state.get("last_retrain_at")
                if not record["steps"] and last and now - datetime.fromisoformat(last) < self.cfg.cooldown:
                    record.update(status="skipped", why=f"loop cooldown: last retraining at {last} "
                                  f"(cooldown {self.cfg.cooldown})")
                    self._save(record)
                    handled.append(record)
                    continue
                if not record["steps"]:
                    state["last_retrain_at"] = now.isoformat()
                    self._save_loop_state(state)
                handled.append(self._handle(record))
            return {"at": now.isoformat(), "rules": outcomes, "incidents": handled}

    def _new_record(self, event: dict[str, Any]) -> dict[str, Any]:
        record = {"incident": event["id"], "rule": event["rule"], "value": event["value"], "detail": event["detail"],
                  "fired_at": event["at"], "status": "running", "steps": {}}
        self._save(record)
        return record

    def _step(self, record: dict[str, Any], name: str, fn) -> Any:
        if name in record["steps"]:
            return record["steps"][name]
        log.info("incident %s: %s", record["incident"], name)
        t0 = time.perf_counter()
        result = fn()
        record["steps"][name] = result
        record.setdefault("seconds", {})[name] = round(time.perf_counter() - t0, 3)
        self._save(record)
        return result

    def _handle(self, record: dict[str, Any]) -> dict[str, Any]:
        cfg, name = self.cfg, self.cfg.model
        work = self.incidents / str(record["incident"])
        store = _registry(self.db)
        prod = self._step(record, "production", lambda: {"version": store.alias_version(name, cfg.alias)})["version"]
        if prod is None:
            record.update(status="skipped", why=f"{name} has no `{cfg.alias}` version to retrain from")
            self._save(record)
            return record
        export = self._step(record, "export", lambda: steps.export_preferences(
            self.db, work / "prefs.jsonl", cfg.retrain.export_strategy))
        if cfg.retrain.use_feedback and export["n_rows"] < cfg.retrain.min_pairs:
            record.update(status="skipped", why=f"only {export['n_rows']} preference pairs "
                          f"(retrain.min_pairs {cfg.retrain.min_pairs})")
            self._save(record)
            return record
        overrides = [f"output.dir={work / 'run'}", f"output.register_as={name}"]
        if cfg.retrain.use_feedback:
            overrides.append(f"data.train={export['path']}")
        if cfg.retrain.start_from_production:
            overrides.append(f"model.adapter=registry:{name}/{prod}")
        trained = self._step(record, "train", lambda: steps.train(Path(cfg.retrain.recipe),
                                                                  [*overrides, *cfg.retrain.overrides]))
        version = self._step(record, "register", lambda: {
            "version": steps.registered_version(trained, name, self.db)})["version"]
        baseline = self._step(record, "baseline_eval", lambda: self._baseline_eval(prod, work))
        cand = self._step(record, "evaluate", lambda: self._candidate_eval(version, work, export))
        comparison = self._step(record, "compare", lambda: steps.compare(baseline["dir"], cand["dir"]))
        staging = self._step(record, "staging", lambda: steps.promote(
            name, version, "staging", Path(cfg.promote.gates), self.db, reason=f"incident {record['incident']}"))
        better, why = steps.is_better(comparison, cfg.promote.metric, cfg.promote.min_delta)
        if staging["decision"] == "refused":
            outcome = {"promoted": False, "why": f"staging refused: {staging['reason']}"}
        elif not better:
            outcome = {"promoted": False, "why": f"kept {name}/{prod}: {name}/{version} is not better ({why})"}
        else:
            prod_step = self._step(record, "promote", lambda: steps.promote(
                name, version, cfg.alias, Path(cfg.promote.gates), self.db,
                reason=f"incident {record['incident']} ({record['rule']}): {why}"))
            ok = prod_step["decision"] in ("accepted", "already")
            outcome = {"promoted": ok, "why": why if ok else f"gates refused: {prod_step['reason']}"}
        record.update(status="done", candidate=version, baseline=prod, outcome=outcome, finished_at=_now().isoformat())
        self._save(record)
        log.warning("incident %s (%s): %s/%s %s — %s", record["incident"], record["rule"], name, version,
                    "promoted" if outcome["promoted"] else "not promoted", outcome["why"])
        return record

    def _baseline_eval(self, prod: int, work: Path) -> dict[str, Any]:
        """Production's evaluation on the suite (run and attached if it has none, so the gate can compare)."""
        ev = self.cfg.evaluate
        res = steps.evaluate(f"registry:{self.cfg.model}/{prod}", Path(ev.suite), work / "eval-baseline", ev.limit,
                             ev.max_new_tokens)
        steps.attach_eval(self.cfg.model, prod, res["dir"], self.db)
        return res

    def _candidate_eval(self, version: int, work: Path, export: dict[str, Any]) -> dict[str, Any]:
        ev = self.cfg.evaluate
        res = steps.evaluate(f"registry:{self.cfg.model}/{version}", Path(ev.suite), work / "eval-candidate",
                             ev.limit, ev.max_new_tokens)
        steps.attach_eval(self.cfg.model, version, res["dir"], self.db)
        prompts = [json.loads(line)["prompt"] for line in Path(export["path"]).read_text().splitlines() if line.strip()]
        if len(prompts) >= 4:  # the drift reference of a version is the prompts it was trained on
            res["drift_reference_sha256"] = steps.drift_reference(self.cfg.model, version, prompts, self.db)
        return res

    def run_forever(self, iterations: int | None = None, on_tick=None) -> None:
        done = 0
        while iterations is None or done < iterations:
            started = time.monotonic()
            result = self.tick()
            if on_tick:
                on_tick(result)
            done += 1
            if iterations is None or done < iterations:
                time.sleep(max(0.0, self.cfg.interval.total_seconds() - (time.monotonic() - started)))


def _registry(db_url: str):
    from llmops.registry import api

    return api.get_store(db_url)


def _now() -> datetime:
    return datetime.now(timezone.utc)


__all__ = ["RetrainLoop"]

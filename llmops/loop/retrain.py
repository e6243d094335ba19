"""`llmops loop`: retrain when a monitoring alert fires, promote only through the gates.

Each tick:

1. (optional) write the recently served prompts to the file the drift rules read;
2. evaluate the alert rules with the monitor's `AlertEngine` (state machine per rule of
   this rules file, committed *before* anything acts on it) and follow running jobs;
3. every incident of a watched rule (`llmops.monitor.incidents`, the monitor's public
   query functions) is advanced through steps recorded one by one in
   ``<state_dir>/incidents/<id>.json``: claim the right to retrain (at most one
   retraining per incident across every process on the database; the rule's cooldown
   and the loop's `cooldown` count from when a training *started*) → export fresh
   feedback → training **job** (its own process; the loop keeps monitoring while it
   runs) → register (also a run that completed but never registered) → evaluate →
   staging gates → production gates, and only if better.

With ``retrain.iterative`` the training job runs K on-policy rounds instead (sample the
production prompts from the current policy → score with a reward model → train
`retrain.recipe` on that round's data; `llmops.loop.retrain_iterative`): the export step is
replaced by a snapshot of the production prompts (``pool``), and the last round's result
goes through the same register → evaluate → gates steps.

An incident that cannot retrain yet — inside a cooldown, or with fewer than
``retrain.min_pairs`` preference pairs — *waits* and is retried (every ``retrain.retry``)
while its alert fires; it is abandoned only when the alert resolves first. A restart
re-reads the record and continues at the first unfinished step; promotion is skipped
when the version already holds the alias, so nothing is done twice. A file lock keeps
two loops off one state directory.
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
from llmops.loop import retrain_iterative, retrain_jobs, steps
from llmops.loop.progress import write_json_atomic
from llmops.loop.retrain_config import LoopConfig
from llmops.settings import database_url

log = logging.getLogger(__name__)
FINAL = ("done", "failed", "abandoned")


class RetrainLoop:
    def __init__(self, config: LoopConfig, db_url: str | None = None) -> None:
        from llmops.monitor.alerts import AlertEngine
        from llmops.monitor.jobs import JobStore
        from llmops.monitor.rules import load_rules

        self.cfg = config
        self.db = database_url(db_url or config.db)
        self.state_dir = Path(config.state_dir)
        self.incidents = self.state_dir / "incidents"
        self.incidents.mkdir(parents=True, exist_ok=True)
        self.engine = AlertEngine(load_rules(config.alerts), self.db)
        self.jobs = JobStore(self.db, root=self.state_dir / "jobs")
        self.owner = f"loop:{self.state_dir}"
        rules = {r.name: r for r in self.engine.rules.rules}
        unknown = sorted(set(config.retrain.rules) - set(rules))
        if unknown:
            raise UserError(f"retrain.rules names unknown rule(s) {', '.join(unknown)} (rules: {', '.join(sorted(rules))})")
        # drift alone does not retrain unless a drift rule is named explicitly
        self.watched = set(config.retrain.rules) or {n for n, r in rules.items() if r.kind != "drift"}
        self.rules = rules

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
        from llmops.monitor.incidents import max_incident_id

        path = self.state_dir / "loop.json"
        if path.exists():
            state = json.loads(path.read_text())
            if "after_incident_id" in state:
                return state
        # Incidents that fired before this loop existed are not ours to handle.
        state = {"created_at": _now().isoformat(), "after_incident_id": max_incident_id(self.db)}
        write_json_atomic(path, state)
        return state

    def _record(self, incident_id: int) -> dict[str, Any] | None:
        path = self.incidents / f"{incident_id}.json"
        return json.loads(path.read_text()) if path.exists() else None

    def _save(self, record: dict[str, Any]) -> None:
        write_json_atomic(self.incidents / f"{record['incident']}.json", record)

    # ------------------------------------------------------------------ tick

    def tick(self, now: datetime | None = None) -> dict[str, Any]:
        """One pass: measure, fire, advance every unfinished incident. Returns what happened."""
        from llmops.monitor.incidents import list_incidents

        now = now or _now()
        with self._locked():
            state = self._loop_state()
            if self.cfg.production_prompts:
                pp = self.cfg.production_prompts
                steps.served_prompts(self.db, Path(pp.path), since=now - pp.window, limit=pp.limit)
            outcomes = [o.to_dict() for o in self.engine.check(now)]
            self.jobs.tick(now)
            handled = []
            for incident in list_incidents(self.db, scope=self.engine.scope, rules=sorted(self.watched),
                                           after_id=state["after_incident_id"]):
                record = self._record(incident["id"]) or self._new_record(incident)
                if record["status"] in FINAL:
                    continue
                handled.append(self._advance(record, incident, now))
            return {"at": now.isoformat(), "rules": outcomes, "incidents": handled}

    def _new_record(self, incident: dict[str, Any]) -> dict[str, Any]:
        record = {"incident": incident["id"], "rule": incident["rule"], "value": incident["value"],
                  "detail": incident["detail"], "fired_at": incident["opened_at"], "status": "open", "steps": {}}
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

    def _set(self, record: dict[str, Any], status: str, why: str) -> dict[str, Any]:
        record.update(status=status, why=why)
        self._save(record)
        return record

    def _advance(self, record: dict[str, Any], incident: dict[str, Any], now: datetime) -> dict[str, Any]:
        from llmops.monitor import incidents as inc

        if incident["retrain"] in FINAL:  # e.g. abandoned by another process
            return self._set(record, incident["retrain"], incident["why"] or incident["retrain"])
        if incident["retrain"] != "claimed" or incident["retrain_owner"] != self.owner:
            due = incident["next_try_at"]
            if incident["retrain"] == "waiting" and due and datetime.fromisoformat(due) > now:
                return self._set(record, "waiting", incident["why"])
            claimed, why = inc.claim_retraining(self.db, incident["id"], self.owner,
                                                self.rules[incident["rule"]].cooldown, now,
                                                model_cooldown=self.cfg.cooldown, model=self.cfg.model)
            if not claimed:
                final = inc.get_incident(self.db, incident["id"])["retrain"]
                return self._set(record, final if final in FINAL else "waiting", why)
        try:
            return self._handle(record, now)
        except Exception as exc:  # noqa: BLE001 - a failing step is recorded and retried next tick, never fatal
            log.exception("incident %s: step failed", record["incident"])
            record.setdefault("errors", []).append({"at": now.isoformat(), "error": f"{type(exc).__name__}: {exc}"})
            return self._set(record, "error", f"{type(exc).__name__}: {exc} (retried next tick)")

    def _handle(self, record: dict[str, Any], now: datetime) -> dict[str, Any]:
        from llmops.monitor import incidents as inc

        cfg, name, iid = self.cfg, self.cfg.model, record["incident"]
        work = self.incidents / str(iid)
        store = _registry(self.db)
        prod = self._step(record, "production", lambda: {"version": store.alias_version(name, cfg.alias)})["version"]
        if prod is None:
            inc.finish_retraining(self.db, iid, "abandoned", f"{name} has no `{cfg.alias}` version")
            return self._set(record, "abandoned", f"{name} has no `{cfg.alias}` version to retrain from")
        it = cfg.retrain.iterative
        if it is not None:  # K on-policy rounds on production prompts (llmops.loop.retrain_iterative)
            export = self._step(record, "pool", lambda: retrain_iterative.snapshot_pool(
                Path(cfg.production_prompts.path), work / "iterative" / "pool.jsonl"))
            if export["n_prompts"] < it.min_prompts:
                why = (f"only {export['n_prompts']} distinct production prompts (retrain.iterative.min_prompts "
                       f"{it.min_prompts}); retry in {cfg.retrain.retry}")
                del record["steps"]["pool"]  # the retry snapshots again: more prompts may have been served
                inc.defer_retraining(self.db, iid, why, now + cfg.retrain.retry)
                return self._set(record, "waiting", why)
            job_id = self._step(record, "train_job", lambda: {"job_id": retrain_iterative.submit(
                self.jobs, cfg, work, prod, export, iid, now)})["job_id"]
        else:
            export = self._step(record, "export", lambda: steps.export_preferences(
                self.db, work / "prefs.jsonl", cfg.retrain.export_strategy))
            if cfg.retrain.use_feedback and export["n_rows"] < cfg.retrain.min_pairs:
                why = (f"only {export['n_rows']} preference pairs (retrain.min_pairs {cfg.retrain.min_pairs}); "
                       f"retry in {cfg.retrain.retry}")
                del record["steps"]["export"]  # the retry exports again: new feedback may have arrived
                inc.defer_retraining(self.db, iid, why, now + cfg.retrain.retry)
                return self._set(record, "waiting", why)
            overrides = [f"output.dir={work / 'run'}", f"output.register_as={name}"]
            if cfg.retrain.use_feedback:
                overrides.append(f"data.train={export['path']}")
            if cfg.retrain.start_from_production:
                overrides.append(f"model.adapter=registry:{name}/{prod}")
            overrides = [*overrides, *cfg.retrain.overrides]
            job_id = self._step(record, "train_job", lambda: {"job_id": retrain_jobs.submit_training(
                self.jobs, Path(cfg.retrain.recipe), overrides, cfg.retrain, name, iid, work / "run", now)})["job_id"]
        inc.set_incident_job(self.db, iid, job_id)
        self.jobs.tick(now)
        job = self.jobs.get(job_id)
        if job["status"] in ("queued", "running"):
            return self._set(record, "training", f"job {job_id} {job['status']} (attempt {job['attempt']})")
        if job["status"] != "succeeded":
            why = f"training job {job_id} {job['status']}: {(job['log_tail'] or '')[-800:]}"
            inc.finish_retraining(self.db, iid, "failed", why)
            return self._set(record, "failed", why)
        # the run to register: the single run, or the last round (whose facts carry every round's)
        trained = self._step(record, "train", lambda: retrain_iterative.finished(work) if it is not None
                             else retrain_jobs.finished_run(Path(cfg.retrain.recipe), overrides))
        version = self._step(record, "register", lambda: {"version": retrain_jobs.ensure_registered(
            trained, Path(trained["recipe"]), trained["overrides"], name, self.db)})["version"]
        baseline = self._step(record, "baseline_eval", lambda: self._baseline_eval(prod, work))
        cand = self._step(record, "evaluate", lambda: self._candidate_eval(version, work, export))
        comparison = self._step(record, "compare", lambda: steps.compare(baseline["dir"], cand["dir"]))
        staging = self._step(record, "staging", lambda: steps.promote(
            name, version, "staging", Path(cfg.promote.gates), self.db, reason=f"incident {iid}"))
        better, why = steps.is_better(comparison, cfg.promote.metric, cfg.promote.min_delta)
        if staging["decision"] == "refused":
            outcome = {"promoted": False, "why": f"staging refused: {staging['reason']}"}
        elif not better:
            outcome = {"promoted": False, "why": f"kept {name}/{prod}: {name}/{version} is not better ({why})"}
        else:
            prod_step = self._step(record, "promote", lambda: steps.promote(
                name, version, cfg.alias, Path(cfg.promote.gates), self.db,
                reason=f"incident {iid} ({record['rule']}): {why}"))
            ok = prod_step["decision"] in ("accepted", "already")
            outcome = {"promoted": ok, "why": why if ok else f"gates refused: {prod_step['reason']}"}
        record.update(status="done", why=outcome["why"], candidate=version, baseline=prod, outcome=outcome,
                      finished_at=_now().isoformat())
        self._save(record)
        inc.finish_retraining(self.db, iid, "done", f"{name}/{version}: {outcome['why']}")
        log.warning("incident %s (%s): %s/%s %s — %s", iid, record["rule"], name, version,
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
        # (the exported pairs' prompts; in iterative mode the production prompts the rounds sampled from)
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

"""Automated retraining: one retraining per incident, none within the cooldown, safe restarts,
and a deliberately worse candidate refused by the gates."""

from __future__ import annotations

import itertools
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml

from llmops.errors import UserError

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]

# Injected drift: production suddenly sends SQL, not docstrings (other words, other lengths).
SHIFTED = [f"SELECT id, name, total_{i} FROM orders_{i % 7} JOIN users ON users.id = orders_{i % 7}.user_id "
           f"WHERE total_{i} > {i * 13} AND status = 'open' ORDER BY created_at DESC LIMIT {i + 5};" for i in range(40)]


def _write_prompts(path: Path, prompts: list[str]) -> None:
    path.write_text("".join(json.dumps({"prompt": p}) + "\n" for p in prompts))


def _normal_prompts() -> list[str]:
    """Production exactly as it was profiled: the check is deterministic (no chance false alarm)."""
    things = ["list", "string", "number", "path", "file", "socket"]
    verbs = ["Return", "Compute", "Parse", "Format"]
    return [f"{v} the {a} of the {b}." + (" Raise an error when it is empty." if (i % 3 == 0) else "")
            for i, (v, a, b) in enumerate(itertools.product(verbs, things, things))]


def _config(tmp: Path, rule_cooldown: str, loop_cooldown: str, min_pairs: int = 1) -> Path:
    from llmops.monitor.drift import DriftConfig, fit_profile, save_profile
    from llmops.monitor.features import simple_tokenize, tokenizer_spec

    save_profile(fit_profile(_normal_prompts(), simple_tokenize, tokenizer_spec(None),
                             DriftConfig(window_sizes=(20, 40))), tmp / "profile.json")
    _write_prompts(tmp / "current.jsonl", _normal_prompts())
    (tmp / "alerts.yaml").write_text(yaml.safe_dump({"rules": [{
        "name": "prompt-drift", "kind": "drift", "reference": "profile.json", "current": "current.jsonl",
        "statistic": "drift", "trigger": 0.5, "clear": 0.5, "for_checks": 1, "cooldown": rule_cooldown,
        "actions": [{"type": "log"}]}]}))
    (tmp / "loop.yaml").write_text(yaml.safe_dump({
        "model": "docs", "alias": "production", "alerts": "alerts.yaml", "state_dir": "state",
        "cooldown": loop_cooldown,
        "retrain": {"rules": ["prompt-drift"],  # drift retrains only when named
                    "recipe": str(REPO / "recipes" / "dpo.yaml"), "min_pairs": min_pairs, "retry": "10m",
                    "max_attempts": 1,
                    "overrides": ["train.max_steps=2", "train.checkpoint_every=0", "train.eval_every=0",
                                  "train.log_every=1", "data.max_length=128"]},
        "evaluate": {"suite": str(REPO / "eval" / "docstring_summary.yaml"), "limit": 12, "max_new_tokens": 16},
        "promote": {"gates": str(REPO / "recipes" / "loop" / "gates.yaml"), "metric": "rougeL", "min_delta": 0.0},
    }))
    return tmp / "loop.yaml"


def test_retrains_once_per_incident_as_a_job_resumes_and_respects_cooldowns(loop_world, tmp_path):
    from llmops.loop.retrain import RetrainLoop
    from llmops.loop.retrain_config import load_loop_config
    from llmops.monitor import incidents
    from llmops.registry import api

    db = loop_world["db"]
    cfg = load_loop_config(_config(tmp_path, rule_cooldown="1h", loop_cooldown="1d"))
    loop = RetrainLoop(cfg, db)
    t0 = datetime.now(timezone.utc)
    n_before = len(api.list_versions("docs", db_url=db))

    quiet = loop.tick(t0)
    assert quiet["rules"][0]["event"] is None and quiet["incidents"] == []

    _write_prompts(tmp_path / "current.jsonl", SHIFTED)
    started = loop.tick(t0 + timedelta(minutes=1))  # fires, claims, exports, submits the training job
    assert started["rules"][0]["event"] == "fired"
    [rec] = started["incidents"]
    assert rec["status"] == "training" and set(rec["steps"]) == {"production", "export", "train_job"}
    job_id = rec["steps"]["train_job"]["job_id"]
    assert loop.jobs.get(job_id)["status"] == "running"  # its own process: the loop returned at once

    # The loop process "dies" here; the job finishes without it; a restarted loop picks everything up.
    restarted = RetrainLoop(cfg, db)
    assert restarted.jobs.wait(job_id, timeout_s=300)["status"] == "succeeded"
    resumed = restarted.tick(t0 + timedelta(minutes=2))
    assert resumed["rules"][0]["event"] is None  # still drifting, but no new incident
    [done] = resumed["incidents"]
    assert done["incident"] == rec["incident"] and done["status"] == "done"
    assert done["steps"]["export"] == rec["steps"]["export"]  # not re-exported
    versions = api.list_versions("docs", db_url=db)
    assert len(versions) == n_before + 1 and done["candidate"] == versions[-1].version
    assert versions[-1].lineage["parent_version"] == done["baseline"]
    assert versions[-1].lineage["feedback_snapshot_id"] == done["steps"]["export"]["snapshot_id"]
    production = api.get_store(db).alias_version("docs", "production")
    assert production == (done["candidate"] if done["outcome"]["promoted"] else done["baseline"])
    assert incidents.get_incident(db, rec["incident"])["retrain"] == "done"

    again = loop.tick(t0 + timedelta(minutes=3))
    assert again["incidents"] == [] and len(api.list_versions("docs", db_url=db)) == n_before + 1

    # The drift resolves and comes back 2 h later: a new incident, but the loop's 1-day cooldown
    # (counted from when the first training started) makes it wait rather than die.
    _write_prompts(tmp_path / "current.jsonl", _normal_prompts())
    assert loop.tick(t0 + timedelta(minutes=4))["rules"][0]["event"] == "resolved"
    _write_prompts(tmp_path / "current.jsonl", SHIFTED)
    late = loop.tick(t0 + timedelta(hours=2))
    assert late["rules"][0]["event"] == "fired"
    [held] = late["incidents"]
    assert held["status"] == "waiting" and "cooldown" in held["why"]
    waiting = incidents.get_incident(db, held["incident"])
    assert waiting["retrain"] == "waiting" and datetime.fromisoformat(waiting["next_try_at"]) > t0 + timedelta(hours=23)
    assert loop.tick(t0 + timedelta(hours=3))["incidents"][0]["status"] == "waiting"  # not due: no claim
    assert len(api.list_versions("docs", db_url=db)) == n_before + 1
    assert api.get_store(db).alias_version("docs", "production") == production


def test_too_little_feedback_waits_and_is_retried(loop_world, tmp_path):
    from llmops.loop.retrain import RetrainLoop
    from llmops.loop.retrain_config import load_loop_config
    from llmops.monitor import incidents

    db = loop_world["db"]
    loop = RetrainLoop(load_loop_config(_config(tmp_path, "1h", "1h", min_pairs=100_000)), db)
    t0 = datetime.now(timezone.utc)
    _write_prompts(tmp_path / "current.jsonl", SHIFTED)
    [rec] = loop.tick(t0)["incidents"]
    assert rec["status"] == "waiting" and "preference pairs" in rec["why"] and "export" not in rec["steps"]
    assert incidents.alert_states(db, loop.engine.scope)[0]["last_training_at"] is None  # no cooldown consumed
    assert loop.tick(t0 + timedelta(minutes=5))["incidents"][0]["why"] == rec["why"]  # not due yet
    retried = loop.tick(t0 + timedelta(minutes=11))["incidents"][0]
    assert retried["status"] == "waiting"
    assert incidents.get_incident(db, rec["incident"])["retrain_attempts"] == 2
    assert loop.jobs.list() == []


def test_two_loops_never_share_a_state_directory(loop_world, tmp_path):
    from llmops.loop.retrain import RetrainLoop
    from llmops.loop.retrain_config import load_loop_config

    cfg = load_loop_config(_config(tmp_path, rule_cooldown="1h", loop_cooldown="1d"))
    first, second = RetrainLoop(cfg, loop_world["db"]), RetrainLoop(cfg, loop_world["db"])
    with first._locked():
        with pytest.raises(UserError, match="another `llmops loop` is running"):
            second.tick()


def test_a_deliberately_worse_candidate_is_refused(loop_world, tmp_path):
    """A model trained with a destructive learning rate must not reach production."""
    from llmops.loop import steps
    from llmops.registry import api

    db = loop_world["db"]
    store = api.get_store(db)
    production = store.alias_version("docs", "production")
    trained = steps.train(REPO / "recipes" / "sft_lora.yaml", [
        f"output.dir={tmp_path / 'broken'}", "output.register_as=docs", "output.save_merged=false",
        "train.max_steps=3", "train.lr=30.0", "train.max_grad_norm=null", "train.warmup_steps=0",
        "train.grad_accum=1", "train.eval_every=0", "train.checkpoint_every=0", "data.limit=32"])
    bad = steps.registered_version(trained, "docs", db)
    ev = steps.evaluate(f"registry:docs/{bad}", REPO / "eval" / "docstring_summary.yaml", tmp_path / "eval-bad", 12, 16)
    steps.attach_eval("docs", bad, ev["dir"], db)
    gates = REPO / "recipes" / "loop" / "gates.yaml"
    staging = steps.promote("docs", bad, "staging", gates, db, reason="test")
    assert staging["decision"] == "accepted"  # lineage is complete: staging only checks that
    refused = steps.promote("docs", bad, "production", gates, db, reason="test")
    assert refused["decision"] == "refused", refused
    assert "rougeL-floor" in refused["reason"] or "no-regression" in refused["reason"]
    assert store.alias_version("docs", "production") == production

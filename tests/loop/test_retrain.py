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
    """Production as it was trained for: a small closed vocabulary, so every word is in the profile's
    vocabulary (the docstrings themselves are so diverse that any two halves test as drifted)."""
    things = ["list", "string", "number", "path", "file", "socket"]
    verbs = ["Return", "Compute", "Parse", "Format"]
    return [f"{v} the {a} of the {b}." + (" Raise an error when it is empty." if (i % 3 == 0) else "")
            for i, (v, a, b) in enumerate(itertools.product(verbs, things, things))]


def _config(tmp: Path, rule_cooldown: str, loop_cooldown: str) -> Path:
    from llmops.monitor.drift import fit_profile, save_profile
    from llmops.monitor.features import simple_tokenize, tokenizer_spec

    save_profile(fit_profile(_normal_prompts(), simple_tokenize, tokenizer_spec(None)), tmp / "profile.json")
    _write_prompts(tmp / "current.jsonl", _normal_prompts())
    (tmp / "alerts.yaml").write_text(yaml.safe_dump({"rules": [{
        "name": "prompt-drift", "kind": "drift", "reference": "profile.json", "current": "current.jsonl",
        "statistic": "drift", "trigger": 0.5, "clear": 0.5, "cooldown": rule_cooldown, "actions": [{"type": "log"}]}]}))
    (tmp / "loop.yaml").write_text(yaml.safe_dump({
        "model": "docs", "alias": "production", "alerts": "alerts.yaml", "state_dir": "state",
        "cooldown": loop_cooldown,
        "retrain": {"recipe": str(REPO / "recipes" / "dpo.yaml"), "min_pairs": 1,
                    "overrides": ["train.max_steps=2", "train.checkpoint_every=0", "train.eval_every=0",
                                  "train.log_every=1", "data.max_length=128"]},
        "evaluate": {"suite": str(REPO / "eval" / "docstring_summary.yaml"), "limit": 12, "max_new_tokens": 16},
        "promote": {"gates": str(REPO / "recipes" / "loop" / "gates.yaml"), "metric": "rougeL", "min_delta": 0.0},
    }))
    return tmp / "loop.yaml"


def test_retrains_once_per_incident_resumes_after_a_crash_and_respects_cooldowns(loop_world, tmp_path, monkeypatch):
    from llmops.loop import steps
    from llmops.loop.retrain import RetrainLoop
    from llmops.loop.retrain_config import load_loop_config
    from llmops.registry import api

    db = loop_world["db"]
    cfg = load_loop_config(_config(tmp_path, rule_cooldown="1h", loop_cooldown="1d"))
    loop = RetrainLoop(cfg, db)
    t0 = datetime.now(timezone.utc)
    n_before = len(api.list_versions("docs", db_url=db))

    quiet = loop.tick(t0)
    assert quiet["rules"][0]["event"] is None and quiet["incidents"] == []

    _write_prompts(tmp_path / "current.jsonl", SHIFTED)
    real_train = steps.train
    monkeypatch.setattr(steps, "train", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("killed mid-retrain")))
    with pytest.raises(RuntimeError, match="killed mid-retrain"):
        loop.tick(t0 + timedelta(minutes=1))  # the incident fires, export runs, training "crashes"
    [record_file] = (tmp_path / "state" / "incidents").glob("*.json")
    crashed = json.loads(record_file.read_text())
    assert crashed["status"] == "running" and set(crashed["steps"]) == {"production", "export"}

    monkeypatch.setattr(steps, "train", real_train)
    resumed = RetrainLoop(cfg, db).tick(t0 + timedelta(minutes=2))  # a restarted loop finishes the same incident
    assert resumed["rules"][0]["event"] is None  # still drifting, but no new incident
    [done] = resumed["incidents"]
    assert done["incident"] == crashed["incident"] and done["status"] == "done"
    assert done["steps"]["export"] == crashed["steps"]["export"]  # not re-exported
    versions = api.list_versions("docs", db_url=db)
    assert len(versions) == n_before + 1 and done["candidate"] == versions[-1].version
    assert versions[-1].lineage["parent_version"] == done["baseline"]
    assert versions[-1].lineage["feedback_snapshot_id"] == done["steps"]["export"]["snapshot_id"]
    production = api.get_store(db).alias_version("docs", "production")
    assert production == (done["candidate"] if done["outcome"]["promoted"] else done["baseline"])
    assert done["outcome"]["why"]

    again = loop.tick(t0 + timedelta(minutes=3))
    assert again["incidents"] == [] and len(api.list_versions("docs", db_url=db)) == n_before + 1

    # The drift clears, then comes back within the rule's cooldown: suppressed, no retraining.
    _write_prompts(tmp_path / "current.jsonl", _normal_prompts())
    assert loop.tick(t0 + timedelta(minutes=4))["rules"][0]["event"] == "cleared"
    _write_prompts(tmp_path / "current.jsonl", SHIFTED)
    suppressed = loop.tick(t0 + timedelta(minutes=5))
    assert suppressed["rules"][0]["event"] == "suppressed" and suppressed["incidents"] == []

    # After the rule's cooldown a new incident fires, but the loop's own cooldown (1 day) holds it.
    _write_prompts(tmp_path / "current.jsonl", _normal_prompts())
    loop.tick(t0 + timedelta(hours=2))
    _write_prompts(tmp_path / "current.jsonl", SHIFTED)
    late = loop.tick(t0 + timedelta(hours=3))
    assert late["rules"][0]["event"] == "fired"
    [held] = late["incidents"]
    assert held["status"] == "skipped" and "cooldown" in held["why"]
    assert len(api.list_versions("docs", db_url=db)) == n_before + 1
    assert api.get_store(db).alias_version("docs", "production") == production


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

"""`llmops loop` with `retrain.iterative`: the config refuses what cannot work (naming the key),
and one incident runs K on-policy rounds on production prompts judged by a reward model, then
the same register → evaluate → staging → production gates path as a single run."""

from __future__ import annotations

import itertools
import json
import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml

from llmops.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
OVERRIDES = ["train.max_steps=2", "train.checkpoint_every=0", "train.eval_every=0", "train.log_every=1",
             "train.batch_size=2", "train.grad_accum=1", "data.max_length=128"]


def _raw(tmp: Path, **iterative) -> dict:
    (tmp / "reward_model").mkdir(exist_ok=True)
    return {
        "model": "docs", "alias": "production", "alerts": str(REPO / "recipes" / "loop" / "alerts.yaml"),
        "state_dir": "state", "production_prompts": {"path": "prod.jsonl"},
        "retrain": {"recipe": str(REPO / "recipes" / "dpo.yaml"), "overrides": list(OVERRIDES),
                    "iterative": {"judge": "reward_model", **iterative}},
        "evaluate": {"suite": str(REPO / "eval" / "docstring_summary.yaml"), "limit": 12, "max_new_tokens": 16},
        "promote": {"gates": str(REPO / "recipes" / "loop" / "gates.yaml")},
    }


def _load(tmp: Path, raw: dict):
    from llmops.loop.retrain_config import load_loop_config

    path = tmp / "loop.yaml"
    path.write_text(yaml.safe_dump(raw))
    return load_loop_config(path)


def test_iterative_config_defaults_and_resolves_the_judge(tmp_path):
    cfg = _load(tmp_path, _raw(tmp_path))
    it = cfg.retrain.iterative
    assert (it.rounds, it.samples, it.method, it.pairs, it.min_score) == (2, 4, "dpo", "all", None)
    assert it.judge == str(tmp_path / "reward_model")  # relative to the config file
    raw = _raw(tmp_path, judge="registry:docs-reward@production", method="rft")
    raw["retrain"]["recipe"] = str(REPO / "recipes" / "sft_lora.yaml")
    assert _load(tmp_path, raw).retrain.iterative.judge == "registry:docs-reward@production"
    raw = _raw(tmp_path)
    del raw["retrain"]["iterative"]
    assert _load(tmp_path, raw).retrain.iterative is None  # absent: the single-run job, as before


@pytest.mark.parametrize(("iterative", "message"), [
    ({"rounds": 0}, r"retrain\.iterative\.rounds: must be >= 1, got 0"),
    ({"rounds": 11}, r"retrain\.iterative\.rounds: must be <= 10, got 11"),
    ({"samples": 1}, r"retrain\.iterative\.samples"),
    ({"samples": 65}, r"retrain\.iterative\.samples"),
    ({"temperature": 0}, r"retrain\.iterative\.temperature"),
    ({"temperature": 2.5}, r"retrain\.iterative\.temperature"),
    ({"prompts_per_round": 0}, r"retrain\.iterative\.prompts_per_round"),
    ({"max_new_tokens": 0}, r"retrain\.iterative\.max_new_tokens"),
    ({"min_prompts": 0}, r"retrain\.iterative\.min_prompts"),
    ({"min_margin": 0}, r"retrain\.iterative\.min_margin"),
    ({"method": "ppo"}, r"retrain\.iterative\.method"),
    ({"pairs": "some"}, r"retrain\.iterative\.pairs"),
    ({"round": 3}, r"retrain\.iterative\.round: unknown key"),
    ({"judge": "raters"}, r"retrain\.iterative\.judge: .*reference answers"),
    ({"judge": "reward"}, r"retrain\.iterative\.judge: .*name the reward model"),
    ({"judge": "builtin:tiny"}, r"retrain\.iterative\.judge: .*not a trained reward model"),
    ({"judge": "registry:docs reward"}, r"retrain\.iterative\.judge: .*malformed registry reference"),
    ({"judge": "./no_such_dir"}, r"retrain\.iterative\.judge: no reward model directory"),
    ({"method": "rft"}, r"retrain\.iterative\.method: rft .*`recipe: sft`.*`recipe: dpo`"),
])
def test_bad_iterative_values_name_the_key(tmp_path, iterative, message):
    with pytest.raises(ConfigError, match=message):
        _load(tmp_path, _raw(tmp_path, **iterative))


@pytest.mark.parametrize(("patch", "message"), [
    ({"launcher": "accelerate"}, r"retrain\.launcher: .*local"),
    ({"use_feedback": True}, r"retrain\.use_feedback: does not apply"),
    ({"min_pairs": 4}, r"retrain\.min_pairs: does not apply"),
    ({"export_strategy": "all_pairs"}, r"retrain\.export_strategy: does not apply"),
    ({"start_from_production": False}, r"retrain\.start_from_production"),
    ({"overrides": ["data.train=x.jsonl"]}, r"retrain\.overrides: data\.train=x\.jsonl"),
    ({"overrides": ["model.adapter=y"]}, r"retrain\.overrides: model\.adapter=y"),
])
def test_single_run_keys_that_would_be_ignored_are_refused(tmp_path, patch, message):
    raw = _raw(tmp_path)
    raw["retrain"].update(patch)
    with pytest.raises(ConfigError, match=message):
        _load(tmp_path, raw)


def test_iterative_needs_the_production_prompts(tmp_path):
    raw = _raw(tmp_path)
    del raw["production_prompts"]
    with pytest.raises(ConfigError, match=r"retrain\.iterative: .*production_prompts"):
        _load(tmp_path, raw)


def test_the_commented_example_in_the_shipped_config_loads(tmp_path):
    """recipes/loop/default.yaml documents the iterative section as a commented-out retrain: block."""
    text = (REPO / "recipes" / "loop" / "default.yaml").read_text().splitlines()
    start = text.index("# retrain:")
    block = []
    for line in text[start:]:
        if not line.startswith("#"):
            break
        block.append(line[2:] if line.startswith("# ") else line[1:])
    example = yaml.safe_load("\n".join(block))["retrain"]
    assert example["iterative"]["judge"].startswith("registry:")
    raw = _raw(tmp_path)
    raw["retrain"] = {**example, "recipe": str(REPO / "recipes" / "dpo.yaml")}
    cfg = _load(tmp_path, raw)
    assert cfg.retrain.iterative is not None and cfg.retrain.iterative.method == "dpo"


def _drift_rule(tmp: Path) -> None:
    """A drift rule that fires when current.jsonl moves away from its profile (as in test_retrain)."""
    from llmops.monitor.drift import DriftConfig, fit_profile, save_profile
    from llmops.monitor.features import simple_tokenize, tokenizer_spec

    things, verbs = ["list", "string", "number", "path", "file", "socket"], ["Return", "Compute", "Parse", "Format"]
    normal = [f"{v} the {a} of the {b}." + (" Raise an error when it is empty." if (i % 3 == 0) else "")
              for i, (v, a, b) in enumerate(itertools.product(verbs, things, things))]
    save_profile(fit_profile(normal, simple_tokenize, tokenizer_spec(None), DriftConfig(window_sizes=(20, 40))),
                 tmp / "profile.json")
    (tmp / "current.jsonl").write_text("".join(json.dumps({"prompt": p}) + "\n" for p in normal))
    (tmp / "alerts.yaml").write_text(yaml.safe_dump({"rules": [{
        "name": "prompt-drift", "kind": "drift", "reference": "profile.json", "current": "current.jsonl",
        "statistic": "drift", "trigger": 0.5, "clear": 0.5, "for_checks": 1, "cooldown": "1h",
        "actions": [{"type": "log"}]}]}))


def _drift(tmp: Path) -> None:
    """Production suddenly sends SQL, not docstrings: the drift rule fires."""
    shifted = [f"SELECT id, name, total_{i} FROM orders_{i % 7} JOIN users ON users.id = orders_{i % 7}.user_id "
               f"WHERE total_{i} > {i * 13} AND status = 'open' ORDER BY created_at DESC LIMIT {i + 5};" for i in range(40)]
    (tmp / "current.jsonl").write_text("".join(json.dumps({"prompt": p}) + "\n" for p in shifted))


@pytest.mark.slow
def test_an_incident_runs_on_policy_rounds_then_the_gates(loop_world, tmp_path):
    from llmops.loop.retrain import RetrainLoop
    from llmops.monitor import incidents
    from llmops.registry import api

    db = loop_world["db"]
    facts = loop_world["facts"]
    shutil.copytree(facts["reward"]["final"], tmp_path / "reward_model")  # the quickstart's reward model
    _drift_rule(tmp_path)
    raw = _raw(tmp_path, rounds=2, samples=3, temperature=1.0, max_new_tokens=16, prompts_per_round=4,
               min_prompts=4, min_margin=1e-4)
    raw.update(alerts="alerts.yaml", cooldown="1d")
    raw["retrain"].update(rules=["prompt-drift"], max_attempts=1)
    cfg = _load(tmp_path, raw)
    loop = RetrainLoop(cfg, db)
    store = api.get_store(db)
    production = store.alias_version("docs", "production")
    n_before = len(api.list_versions("docs", db_url=db))
    t0 = datetime.now(timezone.utc)

    assert loop.tick(t0)["incidents"] == []
    served = [json.loads(x)["prompt"] for x in (tmp_path / "prod.jsonl").read_text().splitlines()]
    assert len(set(served)) >= 4  # the quickstart's simulated traffic, written by the tick

    _drift(tmp_path)
    [rec] = loop.tick(t0 + timedelta(minutes=1))["incidents"]
    assert rec["status"] == "training", rec
    assert set(rec["steps"]) == {"production", "pool", "train_job"}  # no feedback export in this mode
    job_id = rec["steps"]["train_job"]["job_id"]
    assert loop.jobs.get(job_id)["status"] == "running"  # its own process
    job = loop.jobs.wait(job_id, timeout_s=900)
    assert job["status"] == "succeeded", job["log_tail"]
    [done] = loop.tick(t0 + timedelta(minutes=2))["incidents"]
    assert done["status"] == "done", done

    # the rounds ran, each on its own policy's fresh samples of production prompts
    work = tmp_path / "state" / "incidents" / str(rec["incident"]) / "iterative"
    rounds = done["steps"]["train"]["iterative"]["rounds"]
    assert [r["round"] for r in rounds] == [0, 1]
    assert rounds[0]["policy"] == f"registry:docs/{production}"
    assert rounds[1]["policy"] == rounds[0]["registered"] and rounds[0]["registered"].startswith("registry:docs-rounds/")
    pool = {json.loads(x)["prompt"] for x in (work / "pool.jsonl").read_text().splitlines()}
    assert pool == set(served)
    for r in rounds:
        rdir = work / f"round_{r['round']}"
        samples = [json.loads(x) for x in (rdir / "samples.jsonl").read_text().splitlines()]
        assert {s["policy"] for s in samples} == {r["policy"]} and len(samples) == 4
        assert {s["prompt"] for s in samples} <= pool and all(len(s["answers"]) == 3 for s in samples)
        answers = {(s["prompt"], a) for s in samples for a in s["answers"]}
        pairs = [json.loads(x) for x in (rdir / "data.jsonl").read_text().splitlines()]
        assert pairs and all((p["prompt"], p["chosen"]) in answers and (p["prompt"], p["rejected"]) in answers
                             for p in pairs)
        assert (rdir / "round.json").exists() and (rdir / "run" / "final").exists()
    # lineage: the candidate <- docs-rounds/N <- production; registered once
    versions = api.list_versions("docs", db_url=db)
    assert len(versions) == n_before + 1 and done["candidate"] == versions[-1].version
    mid = rounds[0]["registered"].removeprefix("registry:")
    assert versions[-1].lineage["parent_version"] == mid
    mid_name, mid_version = mid.split("/")
    assert api.get_version(mid_name, version=int(mid_version), db_url=db).lineage["parent_version"] == f"docs/{production}"
    assert len(api.list_versions(mid_name, db_url=db)) == 1
    # then exactly the single run's path: evaluations, staging gates, production gates only if better
    assert {"register", "baseline_eval", "evaluate", "compare", "staging"} <= set(done["steps"])
    assert done["steps"]["staging"]["decision"] in ("accepted", "already")
    assert [(r["rule"], r["passed"]) for r in done["steps"]["staging"]["rules"]] == [("has-lineage", True)]
    if "promote" in done["steps"]:  # better than production: the production gates decided
        gates = {r["rule"] for r in done["steps"]["promote"]["rules"]}
        assert gates == {"via-staging", "rougeL-floor", "no-regression-rougeL", "no-regression-bleu"}
        assert done["outcome"]["promoted"] == (done["steps"]["promote"]["decision"] == "accepted")
    else:
        assert not done["outcome"]["promoted"] and "is not better" in done["why"]
    assert store.alias_version("docs", "production") == (done["candidate"] if done["outcome"]["promoted"]
                                                         else production)
    assert store.alias_version("docs", "staging") == done["candidate"]
    assert incidents.get_incident(db, rec["incident"])["retrain"] == "done"

    # a retried job (same plan) skips every finished round and registers nothing again
    from llmops.loop.retrain_iterative import run_plan

    said = []
    again = run_plan(work / "plan.json", progress=said.append)
    assert [r["registered"] for r in again["iterative"]["rounds"]] == [r["registered"] for r in rounds]
    assert all("not redone" in s for s in said)
    assert len(api.list_versions("docs", db_url=db)) == n_before + 1
    assert len(api.list_versions(mid_name, db_url=db)) == 1


@pytest.mark.slow
def test_too_few_production_prompts_wait_and_nothing_trains(loop_world, tmp_path):
    from llmops.loop.retrain import RetrainLoop

    _drift_rule(tmp_path)
    raw = _raw(tmp_path, min_prompts=100_000)
    raw.update(alerts="alerts.yaml")
    raw["retrain"].update(rules=["prompt-drift"], retry="10m")
    loop = RetrainLoop(_load(tmp_path, raw), loop_world["db"])
    t0 = datetime.now(timezone.utc)
    _drift(tmp_path)
    [rec] = loop.tick(t0)["incidents"]
    assert rec["status"] == "waiting" and "distinct production prompts" in rec["why"], rec
    assert "pool" not in rec["steps"] and loop.jobs.list() == []
    assert loop.tick(t0 + timedelta(minutes=11))["incidents"][0]["status"] == "waiting"  # retried, still too few

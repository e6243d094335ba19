"""`llmops tune`: a small study on builtin:tiny (objectives, pruning, report, best recipe), two
workers on PostgreSQL sharing one study, and a worker killed with SIGKILL whose trial is re-run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from llmops.cli.main import main
from train.helpers import make_records, subprocess_env

optuna = pytest.importorskip("optuna")
LLMOPS = [sys.executable, "-m", "llmops"]




def _recipe(tmp_path: Path) -> Path:
    data = tmp_path / "train.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in make_records(48)))
    recipe = {"recipe": "sft", "model": {"base": "builtin:tiny"},
              "lora": {"enabled": True, "r": 4, "alpha": 8, "target_modules": ["q_proj", "v_proj"]},
              "data": {"train": str(data), "max_length": 48, "validation_split": 0.25},
              "train": {"max_steps": 4, "batch_size": 4, "lr": 1e-3, "log_every": 1, "eval_every": 2},
              "output": {"dir": str(tmp_path / "unused")}}
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


def _space(tmp_path: Path, name: str = "space.yaml", **extra) -> Path:
    space = {"study": "s1", "params": {"train.lr": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True},
                                       "lora.r": {"type": "categorical", "choices": [2, 4, 8]}},
             "objectives": ["eval_loss", "cost", "tokens_per_s"], "trials": 3, "sampler": "random",
             "price_per_device_hour": 3.6, **extra}
    path = tmp_path / name
    path.write_text(yaml.safe_dump(space))
    return path


def _study(db: str, name: str):
    from llmops.tune.storage import open_storage

    return optuna.load_study(study_name=name, storage=open_storage(db))


def test_small_study_reports_pareto_front_and_writes_best_recipe(tmp_path, capsys):
    db = f"sqlite:///{tmp_path / 'llmops.db'}"
    recipe, space = _recipe(tmp_path), _space(tmp_path, pruner={"type": "none"})
    assert main(["tune", str(recipe), "--space", str(space), "--db", db, "--out", str(tmp_path / "runs")]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["trials"] == {"COMPLETE": 3} and result["pareto_front"]
    study = _study(db, "s1")
    for t in study.trials:  # every trial is an ordinary run
        manifest = json.loads((Path(t.user_attrs["run_dir"]) / "manifest.json").read_text())
        assert manifest["status"] == "completed" and manifest["run_id"] == t.user_attrs["run_id"]
        assert manifest["recipe"]["train"]["lr"] == pytest.approx(t.params["train.lr"])
        m = t.user_attrs["measured"]
        assert t.values[0] == pytest.approx(manifest["final_metrics"]["eval_loss"])
        assert t.values[1] == pytest.approx(m["wall_time_s"] / 3600 * 3.6) and m["peak_mem_mb"] > 0
    page = (tmp_path / "runs" / "s1" / "report.html").read_text()
    assert "<h2>Pareto front</h2>" in page and "History: cost" in page and "PED-ANOVA" in page
    out = tmp_path / "best.yaml"
    assert main(["tune", "best", "s1", "--objective", "cost", "--out", str(out), "--db", db]) == 0
    chosen = json.loads(capsys.readouterr().out)
    cheapest = min(study.best_trials, key=lambda t: t.values[1])
    assert chosen["trial"] == cheapest.number
    best = yaml.safe_load(out.read_text())
    assert best["train"]["lr"] == pytest.approx(cheapest.params["train.lr"]) and best["lora"]["r"] == cheapest.params["lora.r"]
    assert not Path(db.removeprefix("sqlite:///")).exists()  # the project database file was not touched


def test_space_errors_name_the_key(tmp_path, capsys):
    recipe = _recipe(tmp_path)
    bad = _space(tmp_path, params={"train.lrr": {"type": "float", "low": 0.1, "high": 1}})
    assert main(["tune", str(recipe), "--space", str(bad), "--db", f"sqlite:///{tmp_path / 'x.db'}"]) == 2
    assert "train.lrr" in capsys.readouterr().err
    bad = _space(tmp_path, objectives=["suite:rougeL"])
    assert main(["tune", str(recipe), "--space", str(bad), "--db", f"sqlite:///{tmp_path / 'x.db'}"]) == 2
    assert "needs an `eval: {suite: ...}` section" in capsys.readouterr().err
    bad = _space(tmp_path, params={"data.max_length": {"type": "categorical", "choices": [32, 64]}})
    assert main(["tune", str(recipe), "--space", str(bad), "--db", f"sqlite:///{tmp_path / 'x.db'}"]) == 2
    assert "data.max_length change(s) the validation set" in capsys.readouterr().err


def test_single_objective_prunes_a_bad_trial_on_intermediate_loss(tmp_path, capsys):
    db = f"sqlite:///{tmp_path / 'llmops.db'}"
    space = _space(tmp_path, objectives=["eval_loss"], trials=2, params={
        "train.lr": {"type": "float", "low": 1e-9, "high": 1e-2, "log": True}},
        enqueue=[{"train.lr": 1e-2}, {"train.lr": 1e-9}], pruner={"type": "median", "n_startup_trials": 1})
    assert main(["tune", str(_recipe(tmp_path)), "--space", str(space), "--db", db, "--out", str(tmp_path / "r")]) == 0
    study = _study(db, "s1")
    assert [t.state.name for t in study.trials] == ["COMPLETE", "PRUNED"]
    pruned = study.trials[1]
    assert json.loads((Path(pruned.user_attrs["run_dir"]) / "manifest.json").read_text())["status"] == "pruned"
    assert pruned.user_attrs["eval_loss_by_step"]["2"] > study.trials[0].user_attrs["eval_loss_by_step"]["2"]


@pytest.mark.slow
@pytest.mark.postgres
def test_two_workers_on_postgres_share_one_study_without_duplicates(tmp_path, pg_url):
    from sqlalchemy import create_engine, text

    from llmops.registry import api

    recipe, space = _recipe(tmp_path), _space(tmp_path, trials=2, pruner={"type": "none"})
    env = subprocess_env()
    base = [*LLMOPS, "tune", "--db", pg_url, "--out", str(tmp_path / "runs")]
    first = subprocess.Popen([*base, str(recipe), "--space", str(space)], env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline:  # join once the first worker has created the study
        try:
            _study(pg_url, "s1")
            break
        except KeyError:
            time.sleep(0.5)
    second = subprocess.Popen([*base, "--join", "s1"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for proc in (first, second):
        _, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err[-3000:]
    trials = _study(pg_url, "s1").trials
    assert sorted(t.number for t in trials) == [0, 1, 2, 3] and {t.state.name for t in trials} == {"COMPLETE"}
    assert len({t.user_attrs["run_dir"] for t in trials}) == 4 and len({t.user_attrs["run_id"] for t in trials}) == 4
    assert len({json.dumps(t.params, sort_keys=True) for t in trials}) == 4  # joiners do not replay the creator's seed
    assert len({t.user_attrs["worker"] for t in trials}) == 2
    engine = create_engine(pg_url)
    with engine.connect() as conn:  # Optuna's tables sit in their own schema; ours are untouched
        assert conn.execute(text("SELECT count(*) FROM llmops_tune.trials")).scalar() == 4
        assert conn.execute(text("SELECT to_regclass('public.trials')")).scalar() is None
    engine.dispose()
    assert api.list_models(db_url=pg_url) == []  # the project's migrations still run on this database


@pytest.mark.slow
def test_sigkilled_worker_trial_is_failed_and_rerun_from_its_checkpoint(tmp_path):
    db = f"sqlite:///{tmp_path / 'llmops.db'}"
    space = _space(tmp_path, objectives=["eval_loss"], trials=1, heartbeat={"interval": 1, "grace": 2},
                   overrides=["train.max_steps=20", "train.checkpoint_every=10", "train.eval_every=0"])
    env = subprocess_env()
    out = tmp_path / "runs"
    # The worker SIGKILLs itself right after its first checkpoint is published (llmops.train.faults):
    # no race between a polling test and a short trial, and no long trial to outlast the poll.
    proc = subprocess.Popen([*LLMOPS, "tune", str(_recipe(tmp_path)), "--space", str(space), "--db", db, "--out", str(out)],
                            env={**env, "LLMOPS_FAULT": "checkpoint.published:1"}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    assert proc.wait(timeout=300) == -signal.SIGKILL
    ckpt = out / "s1" / "trial-0000" / "checkpoints"
    assert [p.name for p in ckpt.iterdir() if p.name.startswith("step-")] == ["step-10"]
    assert [t.state.name for t in _study(db, "s1").trials] == ["RUNNING"]
    time.sleep(3)  # past the grace period: the heartbeat is stale
    rerun = subprocess.run([*LLMOPS, "tune", "--join", "s1", "--trials", "1", "--db", db, "--out", str(out)],
                           env=env, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    dead, retry = _study(db, "s1").trials
    assert dead.state.name == "FAIL" and retry.state.name == "COMPLETE"
    assert retry.params == dead.params and retry.user_attrs["run_dir"] == str(out / "s1" / "trial-0000")
    manifest = json.loads((out / "s1" / "trial-0000" / "manifest.json").read_text())
    assert manifest["status"] == "completed" and manifest["steps_completed"] == 20
    assert manifest["attempts"][-1]["resumed_from_step"] == 10


def test_suite_metric_objective_evaluates_each_trial_through_the_harness(tmp_path, capsys):
    items = tmp_path / "items.jsonl"
    items.write_text("".join(json.dumps({"text": f"Sort the list number {i} by key."}) + "\n" for i in range(4)))
    (tmp_path / "ppl.yaml").write_text("name: ppl\ntask: perplexity\ndataset:\n  path: items.jsonl\ntext: text\n"
                                       "metrics: [perplexity]\ngeneration:\n  batch_size: 4\nseed: 0\n")
    db = f"sqlite:///{tmp_path / 'llmops.db'}"
    space = _space(tmp_path, objectives=["suite:perplexity"], trials=1, eval={"suite": "ppl.yaml"})
    assert main(["tune", str(_recipe(tmp_path)), "--space", str(space), "--db", db, "--out", str(tmp_path / "r")]) == 0
    (trial,) = _study(db, "s1").trials
    results = json.loads((Path(trial.user_attrs["run_dir"]) / "eval" / "results.json").read_text())
    assert trial.value == pytest.approx(results["metrics"]["perplexity"]["score"])
    assert _study(db, "s1").direction.name == "MINIMIZE"


def test_multi_objective_pruning_stops_only_dominated_trials():
    from optuna.trial import create_trial

    from llmops.tune.study import DominatedRule

    study = optuna.create_study(directions=["minimize", "minimize"])
    study.add_trial(create_trial(values=[5.0, 0.01], user_attrs={
        "eval_loss_by_step": {"10": 5.2}, "measured": {"wall_time_s": 30.0}}))
    rule = DominatedRule(study, n_startup=1, warmup=0)
    assert rule.should_prune(10, 5.5, elapsed_s=40.0)  # worse loss, already slower than the whole finished run
    assert not rule.should_prune(10, 5.5, elapsed_s=20.0)  # worse, but may still be cheaper: Pareto candidate
    assert not rule.should_prune(10, 5.1, elapsed_s=40.0)  # better loss
    assert not DominatedRule(study, n_startup=2, warmup=0).should_prune(10, 9.9, elapsed_s=99.0)  # too few trials


def test_peak_memory_is_per_trial_not_per_process():
    import numpy as np

    from llmops.tune.memory import peak_mb, reset_peak

    kind = reset_peak()
    big = np.ones(40_000_000)  # ~305 MiB
    first = peak_mb(kind)
    del big
    kind = reset_peak()
    second = peak_mb(kind)
    if kind == "rss-process":
        pytest.skip("this kernel cannot reset the RSS high-water mark")
    assert first - second > 250


def test_isolated_trials_run_in_fresh_processes(tmp_path, capsys):
    db = f"sqlite:///{tmp_path / 'llmops.db'}"
    space = _space(tmp_path, objectives=["eval_loss", "peak_mem_mb"], trials=2, isolate=True, pruner={"type": "none"})
    assert main(["tune", str(_recipe(tmp_path)), "--space", str(space), "--db", db, "--out", str(tmp_path / "r")]) == 0
    trials = _study(db, "s1").trials
    assert [t.state.name for t in trials] == ["COMPLETE", "COMPLETE"]
    workers = {t.user_attrs["worker"] for t in trials}
    assert len(workers) == 2 and str(os.getpid()) not in " ".join(workers)

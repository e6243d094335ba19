"""Trackers: output.project names the experiment, the run id names the run, --resume continues it."""

from __future__ import annotations

import json

import pytest

from llmops.train.engine import Engine
from train.helpers import load, sft_recipe

pytest.importorskip("mlflow")
pytest.importorskip("tensorboard")

TRAIN = {"max_steps": 4, "batch_size": 2, "checkpoint_every": 2, "log_every": 1}


def _interrupted_then_resumed(tmp_path, data_file, monkeypatch):
    recipe = sft_recipe(data_file, tmp_path / "run", train=TRAIN, output={"log_with": ["tensorboard", "mlflow"], "project": "proj13"})
    real_step = Engine.optimizer_step

    def dies_at_step_3(self):
        if self.step == 2:
            raise KeyboardInterrupt("killed")
        return real_step(self)

    monkeypatch.setattr(Engine, "optimizer_step", dies_at_step_3)
    with pytest.raises(KeyboardInterrupt):
        Engine(load(tmp_path, recipe)).run()
    monkeypatch.setattr(Engine, "optimizer_step", real_step)
    return Engine(load(tmp_path, recipe), resume=True).run()


def test_mlflow_and_tensorboard_runs_are_named_and_resumed(tmp_path, data_file, monkeypatch):
    import mlflow

    # MLflow 3's file store refuses new runs unless MLFLOW_ALLOW_FILE_STORE=true: SQLite is the local backend
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    mlflow.set_tracking_uri(uri)
    result = _interrupted_then_resumed(tmp_path, data_file, monkeypatch)
    run_id = result.manifest["run_id"]

    experiment = mlflow.get_experiment_by_name("proj13")
    assert experiment is not None, "output.project did not name the MLflow experiment"
    runs = mlflow.search_runs([experiment.experiment_id], output_format="list")
    assert len(runs) == 1, "--resume opened a second MLflow run"
    (run,) = runs
    assert run.info.run_name == run_id
    assert result.manifest["trackers"]["mlflow_run_id"] == run.info.run_id
    steps = [m.step for m in mlflow.MlflowClient().get_metric_history(run.info.run_id, "train/loss")]
    assert sorted(set(steps)) == [1, 2, 3, 4]  # steps before and after the resume, one run

    from tensorboard.backend.event_processing.event_multiplexer import EventMultiplexer

    logdir = tmp_path / "run" / "trackers" / "proj13"
    mux = EventMultiplexer().AddRunsFromDirectory(str(logdir))
    mux.Reload()
    tb_steps = {e.step for run_name in mux.Runs() for e in (mux.Scalars(run_name, "train/loss") if "train/loss" in mux.GetAccumulator(run_name).Tags()["scalars"] else [])}
    assert tb_steps == {1, 2, 3, 4}
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert len(manifest["attempts"]) == 2 and manifest["recipe"]["output"]["project"] == "proj13"

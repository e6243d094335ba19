"""A training run that completed but died before registering is registered when the loop resumes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from llmops.registry.entities import RegistryError

REPO = Path(__file__).resolve().parents[2]


def test_completed_but_unregistered_run_is_registered_on_resume(tmp_path, monkeypatch):
    from llmops.loop.retrain_jobs import ensure_registered, finished_run
    from llmops.registry import api

    db = f"sqlite:///{tmp_path / 'llmops.db'}"
    monkeypatch.setenv("LLMOPS_DATABASE_URL", db)
    monkeypatch.setenv("LLMOPS_REGISTRY_ROOT", str(tmp_path / "registry"))
    recipe = REPO / "recipes" / "sft_lora.yaml"
    overrides = [f"output.dir={tmp_path / 'run'}", "output.register_as=docs", "output.save_merged=false",
                 "train.max_steps=1", "train.grad_accum=1", "train.eval_every=0", "train.checkpoint_every=0",
                 "data.limit=8", "train.batch_size=2", "model.base=builtin:tiny"]
    # the training process dies (os._exit) right after writing its completed manifest, before registering
    code = ("import os, sys; import llmops.train.engine as e; e.register_final = lambda *a, **k: os._exit(9); "
            "from llmops.cli.main import main; sys.exit(main(sys.argv[1:]))")
    proc = subprocess.run([sys.executable, "-c", code, "train", str(recipe), *overrides], env=os.environ,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 9, proc.stderr[-2000:]
    with pytest.raises(RegistryError, match="no registered model named `docs`"):
        api.list_versions("docs", db_url=db)
    trained = finished_run(recipe, overrides)  # the completed run is returned, nothing retrains
    assert trained["registered"] is None and trained["steps"] == 1
    version = ensure_registered(trained, recipe, overrides, "docs", db)
    [mv] = api.list_versions("docs", db_url=db)
    assert mv.version == version and mv.lineage["run_id"] == trained["run_id"]
    assert ensure_registered(trained, recipe, overrides, "docs", db) == version  # idempotent
    assert len(api.list_versions("docs", db_url=db)) == 1

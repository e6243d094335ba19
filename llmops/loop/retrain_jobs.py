"""The training step of `llmops loop` as a job: submitted once per incident, followed every tick.

The loop never trains in its own process: `submit_training` hands the run to the monitor's
job launcher (its own process, `accelerate launch`, or a scheduler template), and the loop
keeps checking the alert rules while it runs. Once the job succeeded, `finished_run` reads
the run back (a completed run is returned as is, nothing retrains) and `ensure_registered`
registers it if the training process ended between finishing and registering.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from llmops.errors import ConfigError


def submit_training(jobs, recipe: Path, overrides: list[str], spec, model: str, incident_id: int,
                    run_dir: Path, now) -> str:
    """Queue the training job of an incident (the launcher resumes from checkpoints on a retry)."""
    from llmops.monitor.jobs import JobSpec, train_argv

    argv = train_argv(str(recipe), overrides, spec.launcher, spec.num_processes, spec.command,
                      run_dir=str(run_dir))
    return jobs.submit(JobSpec(argv=argv, launcher=spec.launcher, model=model, incident_id=incident_id,
                               run_dir=str(run_dir), cancel_argv=spec.cancel_command, max_attempts=spec.max_attempts,
                               backoff_s=spec.backoff.total_seconds(),
                               env={"LLMOPS_INCIDENT_ID": str(incident_id)}), now)


def finished_run(recipe: Path, overrides: list[str]) -> dict[str, Any]:
    """Facts of a run the job completed (`steps.train` returns a completed run without training)."""
    from llmops.loop import steps

    return steps.train(recipe, overrides)


def ensure_registered(trained: dict[str, Any], recipe: Path, overrides: list[str], name: str, db_url: str) -> int:
    """The version a completed run registered; registers it now if that never happened (resume)."""
    from llmops.registry import api
    from llmops.registry.entities import RegistryError

    ref = trained.get("registered")
    if ref:
        return int(str(ref).rsplit("/", 1)[1])
    try:
        versions = api.list_versions(name, db_url=db_url)
    except RegistryError:  # no version of `name` yet
        versions = []
    for mv in versions:
        if mv.lineage.get("run_id") == trained["run_id"]:
            return mv.version
    from llmops.config import load_recipe
    from llmops.train.manifest import read_manifest
    from llmops.train.publish import register_final

    loaded = load_recipe(recipe, overrides)
    if loaded.recipe.output.register_as != name:
        raise ConfigError(f"run {trained['run_dir']} registers as `{loaded.recipe.output.register_as}`, not `{name}`")
    manifest = read_manifest(Path(trained["run_dir"]))
    if not manifest or manifest.get("status") != "completed":
        raise ConfigError(f"run {trained['run_dir']} is not completed; cannot register it")
    ref = register_final(loaded, manifest, Path(trained["final"]))
    return int(str(ref).rsplit("/", 1)[1])

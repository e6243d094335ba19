"""Running a study: create or join it, run trials as ordinary training runs, prune, recover dead trials.

The study's recipe text, search space and objective names are stored as study user
attributes, so `llmops tune --join STUDY` on another machine needs only the database
URL. Each trial trains into ``<out>/trial-NNNN`` (manifest, metrics, final model); a
trial re-run after its worker died resumes from that trial's last checkpoint.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
import zlib
from pathlib import Path
from typing import Any

import yaml

from llmops.errors import UserError
from llmops.settings import database_url
from llmops.tune.memory import peak_mb, reset_peak
from llmops.tune.objectives import objective_values, run_measurements
from llmops.tune.space import SpaceConfig, check_against_recipe, load_space, suggest
from llmops.tune.storage import open_storage

log = logging.getLogger(__name__)


def _sampler(space: SpaceConfig, seed: int):
    import optuna

    if space.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if space.sampler == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed, multivariate=True, n_startup_trials=min(5, space.trials))


def _pruner(space: SpaceConfig, n_objectives: int):
    import optuna

    if space.pruner.type == "none" or n_objectives > 1:
        return optuna.pruners.NopPruner()  # multi-objective: `MedianRule` below prunes on eval_loss instead
    return optuna.pruners.MedianPruner(n_startup_trials=space.pruner.n_startup_trials,
                                       n_warmup_steps=space.pruner.n_warmup_steps)


def worker_seed(space: SpaceConfig, creator: bool) -> int:
    """The study's creator uses the space's seed (reproducible); joiners get their own stream.

    Two workers with one seed would propose the same parameters in the same order.
    """
    if creator:
        return space.seed
    return zlib.crc32(f"{space.seed}:{socket.gethostname()}:{os.getpid()}:{time.time_ns()}".encode())


class DominatedRule:
    """Pruning for multi-objective studies (Optuna's pruners are single-objective only).

    A running trial stops when some completed trial had a lower validation loss at the
    same step *and* finished its whole run in less wall time than this trial has already
    used: this trial cannot beat it on time or cost any more, and is behind it on loss.
    A median rule on loss alone would kill cheap, slightly worse trials that belong on the
    Pareto front.
    """

    def __init__(self, study, n_startup: int, warmup: int):
        self.study, self.n_startup, self.warmup = study, n_startup, warmup

    def should_prune(self, step: int, loss: float, elapsed_s: float) -> bool:
        from optuna.trial import TrialState

        if step < self.warmup:
            return False
        done = self.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if len(done) < max(self.n_startup, 1):
            return False
        for t in done:
            at_step = t.user_attrs.get("eval_loss_by_step", {}).get(str(step))
            wall = t.user_attrs.get("measured", {}).get("wall_time_s")
            if at_step is not None and wall is not None and at_step < loss and wall < elapsed_s:
                return True
        return False


def _trial_dir(out: Path, trial) -> tuple[Path, bool]:
    """(run directory, resume?) — a re-run of a dead trial continues in the dead trial's directory."""
    from optuna.storages import RetryFailedTrialCallback

    import warnings

    frozen = next(t for t in trial.study.get_trials(deepcopy=False) if t.number == trial.number)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "experimental" since Optuna 2.8
        first = RetryFailedTrialCallback.retried_trial_number(frozen)
    if first is not None:
        return out / f"trial-{first:04d}", True
    return out / f"trial-{trial.number:04d}", False


def make_objective(study, space: SpaceConfig, recipe_path: Path, out: Path, names: list[str]):
    """The function Optuna calls per trial: suggest → train (ordinary run) → measure → values."""
    import optuna

    from llmops.config import load_recipe
    from llmops.eval.contamination import recipe_contamination
    from llmops.eval.in_training import generation_validator
    from llmops.train import StopRun
    from llmops.train import run as train_run

    single = len(names) == 1
    rule = DominatedRule(study, space.pruner.n_startup_trials, space.pruner.n_warmup_steps)

    def objective(trial) -> Any:
        overrides = suggest(trial, space.params)
        run_dir, resume = _trial_dir(out, trial)
        trial.set_user_attr("run_dir", str(run_dir))
        trial.set_user_attr("overrides", overrides)
        trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")
        all_overrides = [*space.overrides, *overrides, f"output.dir={run_dir}"]
        if space.register_as:
            all_overrides.append(f"output.register_as={space.register_as}")
        losses: dict[str, float] = {}
        started = time.perf_counter()
        memory_kind = reset_peak()
        loaded = load_recipe(recipe_path, all_overrides)
        last_step = loaded.recipe.train.max_steps

        def on_eval(step: int, metrics: dict[str, float]) -> None:
            loss = metrics.get("eval_loss")
            if loss is None:
                return
            losses[str(step)] = loss
            trial.set_user_attr("eval_loss_by_step", dict(losses))
            if space.pruner.type == "none" or step >= last_step:  # never throw away a finished run
                return
            if single:
                trial.report(loss, step)
                prune = trial.should_prune()
            else:
                prune = rule.should_prune(step, loss, time.perf_counter() - started)
            if prune:
                raise StopRun(f"pruned at step {step}: eval_loss {loss:.4f}", status="pruned")

        try:
            result = train_run(loaded, resume=resume, on_eval=on_eval, contamination_check=recipe_contamination,
                               generation_validator=generation_validator)
        except StopRun as exc:
            raise optuna.TrialPruned(str(exc)) from None
        measured = run_measurements(result.manifest, result.run_dir, space.price_per_device_hour)
        trial_peak = peak_mb(memory_kind)
        if trial_peak is not None:  # this trial's own peak (metrics.jsonl holds the process's)
            measured["peak_mem_mb"] = round(trial_peak, 1)
        trial.set_user_attr("peak_mem_kind", memory_kind)
        if space.eval is not None:
            measured.update(_suite_scores(result.final_dir, space, run_dir))
        trial.set_user_attr("measured", measured)
        trial.set_user_attr("run_id", result.manifest.get("run_id"))
        if result.registered:
            trial.set_user_attr("registered", result.registered)
        values = objective_values(names, measured)
        return values[0] if single else values

    return objective


def _suite_scores(final_dir: Path, space: SpaceConfig, run_dir: Path) -> dict[str, float]:
    from llmops.eval.api import evaluate

    extra = {"limit": space.eval.limit} if space.eval.limit else {}
    results = evaluate(str(final_dir), space.eval.suite, run_dir / "eval", **extra)
    return {f"suite:{name}": float(m["score"]) for name, m in results["metrics"].items()}


def _directions(space: SpaceConfig, recipe_path: Path | None = None) -> list[str]:
    from llmops.tune.space import BUILTIN_OBJECTIVES

    out = []
    for o in space.objective_list():
        if o.direction:
            out.append(o.direction)
        elif o.name.startswith("suite:"):
            lower = o.name.split(":", 1)[1] in {"perplexity", "ter", "loss"}
            out.append("minimize" if lower else "maximize")
        else:
            out.append(BUILTIN_OBJECTIVES[o.name])
    return out


def create_or_join(
    db_url: str | None, space: SpaceConfig | None = None, recipe_path: Path | None = None, study_name: str | None = None,
):
    """(study, space, recipe text, created?) — a new study from a recipe and space, or an existing one by name."""
    import optuna

    url = database_url(db_url)
    if space is None:  # joining: everything comes from the study
        storage = open_storage(url)
        try:
            study = optuna.load_study(study_name=study_name, storage=storage)
        except KeyError:
            raise UserError(f"no study `{study_name}` in {url} (start it with `llmops tune RECIPE --space FILE`)") from None
        attrs = study.user_attrs
        space = SpaceConfig.model_validate(attrs["space"])
        recipe_text = attrs["recipe_text"]
        return study, space, recipe_text, False
    recipe_text = Path(recipe_path).read_text(encoding="utf-8")
    storage = open_storage(url, space.heartbeat.interval, space.heartbeat.grace, space.max_retries)
    directions = _directions(space)
    try:
        study = optuna.create_study(study_name=space.study, storage=storage, directions=directions)
        created = True
        study.set_user_attr("space", space.model_dump(mode="json"))
        study.set_user_attr("recipe_text", recipe_text)
        study.set_user_attr("recipe_path", str(recipe_path))
        study.set_user_attr("objectives", [o.name for o in space.objective_list()])
    except optuna.exceptions.DuplicatedStudyError:
        study = optuna.load_study(study_name=space.study, storage=storage)
        created = False
        if study.user_attrs.get("space") != space.model_dump(mode="json"):
            raise UserError(f"study `{space.study}` exists with another search space; use --join {space.study} to add "
                            "workers, or set `study:` to a new name") from None
    return study, space, recipe_text, created


def optimize(
    db_url: str | None, out_root: str | Path, recipe_path: str | Path | None = None, space_path: str | Path | None = None,
    join: str | None = None, trials: int | None = None,
) -> dict[str, Any]:
    """Run this worker's trials (a new study, or `join` an existing one); returns a summary."""
    import optuna

    if join:
        study, space, recipe_text, created = create_or_join(db_url, study_name=join)
        # re-open with the study's heartbeat so this worker's trials are recoverable too
        storage = open_storage(database_url(db_url), space.heartbeat.interval, space.heartbeat.grace, space.max_retries)
        study = optuna.load_study(study_name=join, storage=storage)
    else:
        if not (recipe_path and space_path):
            raise UserError("tune needs RECIPE and --space FILE (or --join STUDY)")
        space = load_space(space_path)
        check_against_recipe(recipe_path, space)
        study, space, recipe_text, created = create_or_join(db_url, space, Path(recipe_path))
    out = Path(out_root).expanduser().resolve() / study.study_name
    out.mkdir(parents=True, exist_ok=True)
    recipe_file = out / "recipe.yaml"  # the study's recipe, identical on every worker
    if not recipe_file.exists() or recipe_file.read_text(encoding="utf-8") != recipe_text:
        recipe_file.write_text(recipe_text, encoding="utf-8")
    if not join and recipe_path:
        recipe_file = Path(recipe_path)  # relative paths inside the recipe resolve as the user wrote them
    names = [o.name for o in space.objective_list()]
    n = trials or space.trials
    if space.isolate and not _in_isolated_child():
        if created:
            for params in space.enqueue:
                study.enqueue_trial(params, skip_if_exists=True)
        _run_isolated(db_url, study.study_name, out_root, n)
        from llmops.tune.report import write_report

        report = write_report(study, out / "report.html")
        return {"study": study.study_name, "out": str(out), "report": str(report), "created": created,
                **summary(study)}
    study.sampler = _sampler(space, worker_seed(space, created))
    study.pruner = _pruner(space, len(names))
    if created:
        for params in space.enqueue:  # e.g. the recipe's current values first, as a baseline
            study.enqueue_trial(params, skip_if_exists=True)
    objective = make_objective(study, space, recipe_file, out, names)
    log.info("study %s: running %d trial(s) in %s", study.study_name, n, out)
    study.optimize(objective, n_trials=n, timeout=space.timeout_s, catch=(RuntimeError, ValueError, OSError))
    from llmops.tune.report import write_report

    report = write_report(study, out / "report.html")
    return {"study": study.study_name, "out": str(out), "report": str(report), "created": created,
            **summary(study)}


ISOLATED_ENV = "LLMOPS_TUNE_ISOLATED_CHILD"


def _in_isolated_child() -> bool:
    return os.environ.get(ISOLATED_ENV) == "1"


def _run_isolated(db_url: str | None, study_name: str, out_root: str | Path, n: int) -> None:
    """Each trial in a fresh `llmops tune --join STUDY --trials 1` process (exact per-trial memory)."""
    import subprocess
    import sys

    env = {**os.environ, ISOLATED_ENV: "1"}
    for i in range(n):
        cmd = [sys.executable, "-m", "llmops", "tune", "--join", study_name, "--trials", "1",
               "--db", database_url(db_url), "--out", str(out_root)]
        proc = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL)
        if proc.returncode != 0:
            raise UserError(f"isolated trial {i + 1}/{n} of study `{study_name}` failed (exit {proc.returncode}); "
                            "its error is above")


def summary(study) -> dict[str, Any]:
    from optuna.trial import TrialState

    states: dict[str, int] = {}
    for t in study.get_trials(deepcopy=False):
        states[t.state.name] = states.get(t.state.name, 0) + 1
    names = study.user_attrs.get("objectives", [])
    front = []
    if any(t.state == TrialState.COMPLETE for t in study.get_trials(deepcopy=False)):
        for t in study.best_trials:
            front.append({"trial": t.number, "values": dict(zip(names, t.values)), "params": t.params})
    return {"trials": states, "objectives": names, "pareto_front": front}


def study_json(study) -> str:
    return json.dumps(summary(study), indent=1, default=str)


def best_recipe(db_url: str | None, study_name: str, objective: str | None, out: str | Path) -> dict[str, Any]:
    """Write the recipe of the best trial (for `objective`, among the Pareto front) to `out`."""
    import optuna

    from llmops.config import load_recipe

    study, space, recipe_text, _ = create_or_join(db_url, study_name=study_name)
    names = study.user_attrs.get("objectives", [])
    objective = objective or names[0]
    if objective not in names:
        raise UserError(f"study `{study_name}` has no objective `{objective}` (objectives: {', '.join(names)})")
    front = [t for t in study.best_trials]
    if not front:
        raise UserError(f"study `{study_name}` has no completed trial yet")
    i = names.index(objective)
    sign = 1 if study.directions[i] == optuna.study.StudyDirection.MINIMIZE else -1
    best = min(front, key=lambda t: sign * t.values[i])
    overrides = [*space.overrides, *best.user_attrs.get("overrides", [])]
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".source.yaml")
    tmp.write_text(recipe_text, encoding="utf-8")
    try:
        loaded = load_recipe(tmp, overrides)
    finally:
        tmp.unlink()
    header = (f"# Best trial of study `{study_name}` for objective `{objective}`: trial {best.number}\n"
              f"# values: {dict(zip(names, best.values))}\n# overrides: {overrides}\n")
    out.write_text(header + yaml.safe_dump(loaded.resolved, sort_keys=False), encoding="utf-8")
    return {"trial": best.number, "values": dict(zip(names, best.values)), "overrides": overrides, "out": str(out)}


def list_studies(db_url: str | None) -> list[dict[str, Any]]:
    """The studies in the project database: name, objectives, directions, trial count, start time.

    Read-only: a SQLite project without a tuning file has no studies (none is created).
    """
    from sqlalchemy.engine import make_url

    from llmops.tune.storage import tune_storage_url

    url = database_url(db_url)
    if make_url(url).get_backend_name() == "sqlite":
        tune_file = make_url(tune_storage_url(url)[0]).database
        if not tune_file or not Path(tune_file).exists():
            return []
    import optuna

    summaries = optuna.get_all_study_summaries(open_storage(url), include_best_trial=False)
    return [{"name": s.study_name, "objectives": s.user_attrs.get("objectives", []),
             "directions": [d.name.lower() for d in s.directions], "n_trials": s.n_trials,
             "started": s.datetime_start} for s in summaries]


def load_study(db_url: str | None, study_name: str):
    """An existing study by name (UserError when there is none)."""
    import optuna

    if not any(s["name"] == study_name for s in list_studies(db_url)):
        raise UserError(f"no study `{study_name}` in {database_url(db_url)}")
    return optuna.load_study(study_name=study_name, storage=open_storage(database_url(db_url)))

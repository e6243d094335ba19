"""The `llmops loop` config file (YAML, strict): what to watch, how to retrain, how to promote.

Relative paths are relative to the config file. See recipes/loop/default.yaml.
"""

from __future__ import annotations

import os

from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from llmops.config.loader import load_yaml_model


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _duration(value: Any) -> timedelta:
    from llmops.monitor.rules import parse_duration

    return parse_duration(value) if not isinstance(value, timedelta) else value


class ProductionPrompts(_Strict):
    path: str = Field(description="Where the loop writes recent served prompts before each tick (a drift rule's `current`).")
    window: timedelta = Field(timedelta(days=1), description="Only prompts served within this window.")
    limit: int = Field(2000, gt=0, description="At most this many (the newest).")

    @field_validator("window", mode="before")
    @classmethod
    def _window(cls, v: Any) -> timedelta:
        return _duration(v)


class RetrainSpec(_Strict):
    rules: list[str] = Field(default_factory=list, description="Rule names that trigger retraining (empty: every "
                             "rule except drift rules: drift alone does not retrain unless named here).")
    recipe: str = Field(description="Training recipe run on each incident (e.g. ../dpo.yaml).")
    overrides: list[str] = Field(default_factory=list, description="KEY=VALUE overrides for the recipe.")
    launcher: Literal["local", "accelerate", "template"] = Field(
        "local", description="How the training job runs: `llmops train` as its own process, `accelerate launch` "
        "(num_processes), or `command` (a scheduler submit that blocks until the job ends, e.g. `sbatch --wait`).")
    num_processes: int = Field(2, ge=1)
    command: list[str] | None = Field(None, description="Template argv ({recipe}, {overrides}, {job_id}, {run_dir}).")
    cancel_command: list[str] | None = Field(None, description="Template argv run when a job is cancelled ({job_id}).")
    max_attempts: int = Field(2, ge=1, description="Attempts of the training job (it resumes from its checkpoint).")
    backoff: timedelta = Field(timedelta(minutes=5), description="Delay before a failed job's next attempt (doubles).")
    retry: timedelta = Field(timedelta(minutes=30), description="How often an incident with too little data retries.")
    use_feedback: bool = Field(True, description="Train on the fresh preference export (sets data.train).")
    start_from_production: bool = Field(
        True, description="Set model.adapter to the production version (its LoRA adapter is the starting policy).")
    export_strategy: str = Field("best_vs_worst", description="Feedback export strategy (docs/feedback.md).")
    min_pairs: int = Field(8, ge=1, description="Fewer exported pairs: the incident waits and retries every `retry`.")

    @field_validator("backoff", "retry", mode="before")
    @classmethod
    def _durations(cls, v: Any) -> timedelta:
        return _duration(v)


class EvalSpec(_Strict):
    suite: str = Field(description="Evaluation suite (the gates' `suite` must be this suite's name).")
    limit: int = Field(49, gt=0, description="Samples evaluated.")
    max_new_tokens: int = Field(32, gt=0)


class PromoteSpec(_Strict):
    gates: str = Field(description="Gates file; the loop promotes to `staging`, then to `alias`, through it.")
    metric: str = Field("rougeL", description="The candidate must beat production on this metric ...")
    min_delta: float = Field(0.0, description="... by more than this (paired point estimate).")


class LoopConfig(_Strict):
    model: str = Field(description="Registered model the loop maintains.")
    alias: str = Field("production", description="Alias that serves traffic.")
    alerts: str = Field(description="Alert rules file (llmops monitor rules: rating_drop, drift, error_rate).")
    state_dir: str = Field(description="Incidents, exports, runs and evaluations live here.")
    interval: timedelta = Field(timedelta(minutes=5), description="Time between ticks.")
    cooldown: timedelta = Field(timedelta(hours=6), description="Minimum time between two retrainings (any rule).")
    production_prompts: ProductionPrompts | None = None
    retrain: RetrainSpec
    evaluate: EvalSpec
    promote: PromoteSpec
    db: str | None = Field(None, description="Database URL (default: --db, $LLMOPS_DATABASE_URL, SQLite in $LLMOPS_HOME).")

    @field_validator("interval", "cooldown", mode="before")
    @classmethod
    def _durations(cls, v: Any) -> timedelta:
        return _duration(v)


def load_loop_config(path: str | Path) -> LoopConfig:
    """Relative paths resolve against the config file's folder *as named* (not through
    symlinks: a checkout's `recipes/` links into the package, and `../../runs` must stay in
    the checkout). A config read from the package itself (`llmops loop --config
    recipes/loop/default.yaml` outside a checkout) keeps its state in ./runs/loop, never
    inside the installed package."""
    from llmops.resources import root as resources_root
    from llmops.resources import shipped_fallback

    path = Path(os.path.abspath(shipped_fallback(path)))
    cfg = load_yaml_model(path, LoopConfig, "loop config")
    base = path.parent

    def rel(p: str) -> str:
        return p if Path(p).is_absolute() else os.path.normpath(base / p)

    shipped = os.path.commonpath([str(path), str(resources_root())]) == str(resources_root())
    cfg.alerts = rel(cfg.alerts)
    cfg.state_dir = os.path.abspath(os.path.join("runs", "loop")) if shipped else rel(cfg.state_dir)
    cfg.retrain.recipe, cfg.evaluate.suite, cfg.promote.gates = (
        rel(cfg.retrain.recipe), rel(cfg.evaluate.suite), rel(cfg.promote.gates))
    if cfg.production_prompts:
        cfg.production_prompts.path = rel(cfg.production_prompts.path)
    return cfg

"""The `llmops loop` config file (YAML, strict): what to watch, how to retrain, how to promote.

Relative paths are relative to the config file. See recipes/loop/default.yaml.
"""

from __future__ import annotations

import os

from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from llmops.config.loader import load_yaml_model
from llmops.errors import ConfigError


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


# Limits of `retrain.iterative` (each round samples prompts_per_round x samples answers and trains once).
MAX_ROUNDS = 10
MAX_SAMPLES = 64
MAX_PROMPTS_PER_ROUND = 100_000
MAX_TEMPERATURE = 2.0
MAX_NEW_TOKENS = 4096
# Keys each round sets itself (the round's data, its starting policy, its run directory, its name).
ITERATIVE_OWNS = ("data.train", "model.adapter", "output.dir", "output.register_as")


class IterativeRetrain(_Strict):
    """K on-policy rounds (llmops.loop.iterative) instead of one run on the feedback export."""

    rounds: int = Field(2, ge=1, le=MAX_ROUNDS, description="Rounds of sample -> judge -> train; each starts "
                        "from the previous round's result (the first from production).")
    samples: int = Field(4, ge=2, le=MAX_SAMPLES, description="Answers sampled per prompt per round.")
    temperature: float = Field(1.0, gt=0, le=MAX_TEMPERATURE, description="Sampling temperature (> 0: the "
                               "answers must differ to be compared).")
    max_new_tokens: int = Field(64, ge=1, le=MAX_NEW_TOKENS, description="Longest sampled answer.")
    prompts_per_round: int = Field(256, ge=1, le=MAX_PROMPTS_PER_ROUND, description="Production prompts per round, "
                                   "taken in order from the pool; the next round continues where this one stopped.")
    min_prompts: int = Field(16, ge=1, description="Fewer distinct production prompts: the incident waits and "
                             "retries every `retrain.retry`.")
    method: Literal["dpo", "rft"] = Field("dpo", description="dpo: every pair of a prompt's answers whose scores "
                                          "differ by min_margin (a `recipe: dpo` recipe); rft: each prompt's best "
                                          "answer (a `recipe: sft` recipe).")
    pairs: Literal["all", "best_vs_worst"] = Field("all", description="DPO: every ordered pair, or one per prompt.")
    min_margin: float = Field(0.5, gt=0, description="DPO: least score difference of a pair, in the judge's units.")
    min_score: float | None = Field(None, description="RFT: least score of a prompt's best answer (none: no floor).")
    judge: str = Field(description="The reward model that scores the answers: registry:NAME@ALIAS, "
                       "registry:NAME/VERSION or a path (relative to this file), or a hub id.")
    seed: int = Field(0, ge=0, description="Sampling seed (round k samples with seed*1000+k).")

    @field_validator("judge")
    @classmethod
    def _judge(cls, v: str) -> str:
        from llmops.models.refs import parse_ref

        v = v.strip()
        if v == "raters":
            raise ValueError("the simulated raters judge answers against reference answers, and production prompts "
                             "have none (they exist only in the quickstart); name a reward model: "
                             "registry:NAME@ALIAS, registry:NAME/VERSION or a path")
        if v == "reward":
            raise ValueError("name the reward model itself: registry:NAME@ALIAS, registry:NAME/VERSION or a path")
        if v.startswith("builtin:"):
            raise ValueError(f"{v} is a language model, not a trained reward model")
        if v.startswith("registry:"):  # paths are checked once resolved against the config file
            try:
                parse_ref(v)
            except Exception as exc:  # noqa: BLE001 - ModelRefError: malformed reference
                raise ValueError(str(exc)) from None
        return v


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
    iterative: IterativeRetrain | None = Field(None, description="On-policy rounds on production prompts judged by "
                                               "a reward model, instead of one run on the feedback export.")

    @field_validator("backoff", "retry", mode="before")
    @classmethod
    def _durations(cls, v: Any) -> timedelta:
        return _duration(v)

    @model_validator(mode="after")
    def _iterative_fits(self) -> "RetrainSpec":
        if self.iterative is None:
            return self
        problems = []
        if self.launcher != "local":
            problems.append(f"retrain.launcher: the rounds run in one local job process (sampling, judging and each "
                            f"round's training); `{self.launcher}` is not supported with retrain.iterative")
        # keys of the single-run mode: set explicitly they would be silently ignored, so refuse them
        if self.use_feedback and "use_feedback" in self.model_fields_set:
            problems.append("retrain.use_feedback: does not apply with retrain.iterative (the rounds train on "
                            "judged samples of production prompts, not on the feedback export); remove it")
        for key, why in (("export_strategy", "nothing is exported"),
                         ("min_pairs", "the rounds wait for iterative.min_prompts production prompts instead")):
            if key in self.model_fields_set:
                problems.append(f"retrain.{key}: does not apply with retrain.iterative ({why}); remove it")
        if not self.start_from_production:
            problems.append("retrain.start_from_production: the first round samples the production version, "
                            "so it cannot be false with retrain.iterative")
        owned = [o for o in self.overrides if o.split("=", 1)[0].strip() in ITERATIVE_OWNS]
        if owned:
            problems.append(f"retrain.overrides: {', '.join(owned)}: each round sets {', '.join(ITERATIVE_OWNS)} "
                            "itself (its data, its starting policy, its run)")
        if problems:
            raise ValueError("; ".join(problems))
        return self


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

    @model_validator(mode="after")
    def _pool(self) -> "LoopConfig":
        if self.retrain.iterative is not None and self.production_prompts is None:
            raise ValueError("retrain.iterative: the rounds sample the production prompts the loop writes to "
                             "production_prompts.path; add a production_prompts: section")
        return self


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
    if cfg.retrain.iterative is not None:
        _check_iterative(cfg, path, rel)
    return cfg


def _check_iterative(cfg: LoopConfig, path: Path, rel) -> None:
    """What the schema cannot see: the judge's files and the recipe's kind."""
    from llmops.config import load_recipe
    from llmops.errors import ModelRefError
    from llmops.models.refs import parse_ref

    it = cfg.retrain.iterative
    if not it.judge.startswith("registry:"):
        local = rel(os.path.expanduser(it.judge))
        if Path(local).exists() or it.judge.startswith((".", "/", "~")) or it.judge.endswith("/"):
            if not Path(local).is_dir():
                raise ConfigError(f"{path}: retrain.iterative.judge: no reward model directory at {local}")
            it.judge = local
        else:
            try:
                parse_ref(it.judge)  # a hub id
            except ModelRefError as exc:
                raise ConfigError(f"{path}: retrain.iterative.judge: {exc}") from None
    kind = load_recipe(cfg.retrain.recipe, cfg.retrain.overrides).recipe.recipe
    want = {"dpo": "dpo", "rft": "sft"}[it.method]
    if kind != want:
        raise ConfigError(f"{path}: retrain.iterative.method: {it.method} trains each round with a `recipe: {want}` "
                          f"recipe, but retrain.recipe ({cfg.retrain.recipe}) is `recipe: {kind}`")

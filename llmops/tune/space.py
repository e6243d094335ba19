"""The search-space file of `llmops tune`: parameters over recipe keys, objectives, cost and budget.

```yaml
study: sft-lora-cost
params:
  train.lr: {type: float, low: 1.0e-4, high: 1.0e-2, log: true}
  lora.r: {type: int, low: 4, high: 32, log: true}
  train.batch_size: {type: categorical, choices: [4, 8, 16]}
objectives:
  - eval_loss                      # minimise (default direction of each objective)
  - {name: cost, direction: minimize}
price_per_device_hour: 2.50        # what one device-hour costs (the `cost` objective)
```
Objectives: ``eval_loss`` (final validation loss), ``suite:METRIC`` (a metric of the
``eval`` suite, evaluated on each trial's final model through the harness),
``wall_time_s``, ``tokens_per_s``, ``peak_mem_mb`` and ``cost`` (wall hours × devices ×
price). Every key in ``params`` and ``overrides`` is a dotted recipe key, checked against the
recipe schema before the first trial.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from llmops.config.loader import load_yaml_model
from llmops.errors import ConfigError

BUILTIN_OBJECTIVES = {
    "eval_loss": "minimize", "wall_time_s": "minimize", "tokens_per_s": "maximize", "peak_mem_mb": "minimize",
    "cost": "minimize",
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Param(_Strict):
    type: Literal["float", "int", "categorical"]
    low: float | None = Field(None, description="Lower bound (float/int).")
    high: float | None = Field(None, description="Upper bound (float/int).")
    log: bool = Field(False, description="Sample on a log scale (float/int).")
    step: float | None = Field(None, description="Grid step (float/int, not with log).")
    choices: list[Any] | None = Field(None, description="Values of a categorical parameter.")

    @model_validator(mode="after")
    def _shape(self) -> Param:
        if self.type == "categorical":
            if not self.choices:
                raise ValueError("categorical needs a non-empty `choices` list")
        else:
            if self.low is None or self.high is None or self.low > self.high:
                raise ValueError(f"{self.type} needs `low` <= `high`")
            if self.log and (self.low <= 0 or self.step is not None):
                raise ValueError("log scale needs low > 0 and no step")
        return self


class Objective(_Strict):
    name: str = Field(description="eval_loss, suite:METRIC, wall_time_s, tokens_per_s, peak_mem_mb or cost.")
    direction: Literal["minimize", "maximize"] | None = Field(None, description="Default: the objective's natural one.")


class EvalSpec(_Strict):
    suite: str = Field(description="Suite YAML evaluated on each trial's final model (relative to the space file).")
    limit: int | None = Field(None, gt=0, description="Evaluate only the first N items.")


class PrunerSpec(_Strict):
    type: Literal["median", "none"] = "median"
    n_startup_trials: int = Field(2, ge=0, description="Completed trials before any pruning.")
    n_warmup_steps: int = Field(0, ge=0, description="Steps of a trial before it can be pruned.")


class Heartbeat(_Strict):
    interval: int = Field(30, gt=0, description="Seconds between a running trial's heartbeats.")
    grace: int = Field(90, gt=0, description="A trial silent this long (its worker died) is failed and re-run.")


class SpaceConfig(_Strict):
    study: str | None = Field(None, description="Study name (default: the space file's stem).")
    params: dict[str, Param] = Field(min_length=1, description="Dotted recipe key -> distribution.")
    objectives: list[str | Objective] = Field(default_factory=lambda: ["eval_loss"], min_length=1)
    overrides: list[str] = Field(default_factory=list, description="KEY=VALUE applied to every trial.")
    enqueue: list[dict[str, Any]] = Field(
        default_factory=list, description="Parameter sets tried first, in order (e.g. the recipe's current values)."
    )
    trials: int = Field(10, gt=0, description="Trials this worker runs (each worker of the study adds its own).")
    timeout_s: float | None = Field(None, gt=0, description="Stop starting trials after this many seconds.")
    isolate: bool = Field(
        False, description="Run each trial in a fresh worker process (`tune --join STUDY --trials 1`): per-trial "
        "peak memory is then exact, and a crash ends one trial, not the worker. Costs a few seconds per trial.",
    )
    sampler: Literal["tpe", "random", "nsga2"] = "tpe"
    seed: int = 0
    pruner: PrunerSpec = Field(default_factory=PrunerSpec)
    eval: EvalSpec | None = None
    price_per_device_hour: float = Field(0.0, ge=0, description="Cost of one device-hour (any currency).")
    register_as: str | None = Field(None, description="Register every completed trial's model under this name.")
    max_retries: int = Field(2, ge=0, description="Re-runs of a trial whose worker died.")
    heartbeat: Heartbeat = Field(default_factory=Heartbeat)

    def objective_list(self) -> list[Objective]:
        return [o if isinstance(o, Objective) else Objective(name=o) for o in self.objectives]

    @model_validator(mode="after")
    def _objectives(self) -> SpaceConfig:
        names = [o.name for o in self.objective_list()]
        if len(set(names)) != len(names):
            raise ValueError(f"objectives: duplicate names in {names}")
        for name in names:
            if name.startswith("suite:"):
                if self.eval is None:
                    raise ValueError(f"objective `{name}` needs an `eval: {{suite: ...}}` section")
            elif name not in BUILTIN_OBJECTIVES:
                raise ValueError(f"objectives: unknown `{name}` (one of {', '.join(BUILTIN_OBJECTIVES)} or suite:METRIC)")
        return self


def load_space(path: str | Path) -> SpaceConfig:
    cfg = load_yaml_model(path, SpaceConfig, "search space")
    if cfg.eval is not None:
        suite = Path(cfg.eval.suite)
        if not suite.is_absolute():
            cfg.eval.suite = str((Path(path).parent / suite).resolve())
    if cfg.study is None:
        cfg.study = Path(path).stem
    return cfg


def suggest(trial, params: dict[str, Param]) -> list[str]:
    """Ask the trial for every parameter; returns recipe overrides ``key=value``."""
    import yaml

    out = []
    for key, p in params.items():
        if p.type == "float":
            value: Any = trial.suggest_float(key, p.low, p.high, log=p.log, step=p.step)
        elif p.type == "int":
            value = trial.suggest_int(key, int(p.low), int(p.high), log=p.log, step=int(p.step or 1))
        else:
            value = trial.suggest_categorical(key, p.choices)
        out.append(f"{key}={yaml.safe_dump(value, default_flow_style=True).strip().removesuffix('...').strip()}")
    return out


VALIDATION_KEYS = ("data.max_length", "data.limit", "data.validation", "data.validation_split", "data.train",
                   "data.format", "data.chat_template")


def check_against_recipe(recipe_path: str | Path, space: SpaceConfig) -> None:
    """Fail before the first trial when a parameter or override is not a recipe key (or a bad value).

    Searching a key that changes the validation set makes `eval_loss` incomparable across
    trials: that is refused too.
    """
    import yaml

    if any(o.name == "eval_loss" for o in space.objective_list()):
        bad = [k for k in space.params if k in VALIDATION_KEYS]
        if bad:
            raise ConfigError(f"search space: {', '.join(bad)} change(s) the validation set, so eval_loss of different "
                              "trials would not be comparable; fix it in `overrides` or use a suite:METRIC objective")

    from llmops.config import load_recipe

    probe = list(space.overrides)
    for key, p in space.params.items():
        value = p.choices[0] if p.type == "categorical" else (int(p.low) if p.type == "int" else p.low)
        probe.append(f"{key}={yaml.safe_dump(value, default_flow_style=True).strip().removesuffix('...').strip()}")
    try:
        load_recipe(recipe_path, probe)
    except ConfigError as exc:
        raise ConfigError(f"search space does not fit {recipe_path}: {exc}") from None

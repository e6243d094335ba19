"""Training engine: one accelerate loop, pluggable tasks (SFT, distillation, preference).

Public API:
- `run(loaded_recipe, resume=False) -> RunResult` — what `llmops train` calls;
- `llmops.train.task` — the `Task` interface a recipe implements;
- `llmops.train.losses` — token-level CE and knowledge-distillation divergences.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from llmops.config.loader import LoadedRecipe
    from llmops.train.engine import RunResult

__all__ = ["run", "RunResult", "StopRun"]


def run(loaded: "LoadedRecipe", resume: bool = False, **hooks) -> "RunResult":
    """Train `loaded` into `output.dir`; with `resume`, continue from the newest checkpoint.

    `hooks` (see `llmops.train.engine.Hooks`): ``on_eval(step, metrics)`` after every
    validation (raise `StopRun` to stop early, e.g. a pruned tuning trial) and
    ``contamination_check(recipe) -> dict`` whose result is recorded in the manifest;
    ``generation_validator(recipe) -> scorer | None`` for `train.generation_eval`
    (`llmops.eval.in_training.generation_validator`).
    """
    from llmops.train.engine import run as _run

    return _run(loaded, resume=resume, **hooks)


def __getattr__(name: str):
    if name in ("RunResult", "StopRun"):
        from llmops.train import engine

        return getattr(engine, name)
    raise AttributeError(name)

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

__all__ = ["run", "RunResult"]


def run(loaded: "LoadedRecipe", resume: bool = False) -> "RunResult":
    """Train `loaded` into `output.dir`; with `resume`, continue from the newest checkpoint."""
    from llmops.train.engine import run as _run

    return _run(loaded, resume=resume)


def __getattr__(name: str):
    if name == "RunResult":
        from llmops.train.engine import RunResult

        return RunResult
    raise AttributeError(name)

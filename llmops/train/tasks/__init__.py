"""Task registry: recipe name → task class, imported lazily.

Add a task by adding one line here (see `llmops.train.task` for the interface).
"""

from __future__ import annotations

import importlib

from llmops.config.schema import Recipe
from llmops.errors import ConfigError
from llmops.train.task import Task

TASKS: dict[str, str] = {
    "sft": "llmops.train.tasks.sft:SFTTask",
    "distill": "llmops.train.tasks.distill:DistillTask",
    "reward": "llmops.train.tasks.reward:RewardTask",
    "dpo": "llmops.train.tasks.dpo:DPOTask",
    "rloo": "llmops.train.tasks.rloo:RLOOTask",
}


def build_task(recipe: Recipe) -> Task:
    """Instantiate the task named by `recipe.recipe`."""
    target = TASKS.get(recipe.recipe)
    if target is None:
        raise ConfigError(f"recipe: `{recipe.recipe}` has no training task (known: {', '.join(TASKS)})")
    module_name, cls_name = target.split(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name == module_name:
            raise ConfigError(f"recipe: `{recipe.recipe}` is not available in this build ({module_name} missing)") from None
        raise
    return getattr(module, cls_name)(recipe)

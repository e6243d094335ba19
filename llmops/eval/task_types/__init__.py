"""Task types: what a suite's ``task`` does with a model (see `base.TaskType`).

Add a task type by writing a `TaskType` subclass and adding it to `TASK_TYPES` below;
the suite schema, the runner, the cache and samples.jsonl take it from there.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from llmops.eval.task_types.base import TaskType
from llmops.eval.task_types.generate import GenerateTask, generation_params
from llmops.eval.task_types.multiple_choice import MultipleChoiceTask
from llmops.eval.task_types.perplexity import PerplexityTask

if TYPE_CHECKING:
    from llmops.eval.suites import Suite

TASK_TYPES: dict[str, type[TaskType]] = {t.name: t for t in (GenerateTask, MultipleChoiceTask, PerplexityTask)}


def task_type(suite: Suite) -> TaskType:
    """The task type of `suite` (its ``task``), bound to the suite."""
    return TASK_TYPES[suite.task](suite)


__all__ = ["TASK_TYPES", "GenerateTask", "MultipleChoiceTask", "PerplexityTask", "TaskType", "generation_params",
           "task_type"]

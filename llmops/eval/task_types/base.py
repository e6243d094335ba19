"""The interface of a task type: records → typed requests → answers → per-sample outputs → metric inputs.

A suite's ``task`` names a `TaskType`. The runner only ever calls this interface: the
task type renders samples, asks the model through typed requests (`llmops.eval.requests`),
keeps from the answers what the result cache stores (one JSON row per sample), hands each
metric the inputs of its kind and writes its own fields into samples.jsonl. Adding a task
type is a new subclass registered in `llmops.eval.task_types`; the runner does not change.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, ClassVar

from llmops.eval.requests import Request, answer

if TYPE_CHECKING:
    from llmops.eval.backends.base import Backend
    from llmops.eval.metrics.base import Metric
    from llmops.eval.suites import Suite
    from llmops.eval.tasks import Sample


class TaskType(ABC):
    """How one kind of suite asks a model and scores its answers."""

    name: ClassVar[str]
    description: ClassVar[str] = ""
    required: ClassVar[tuple[str, ...]] = ()  # suite fields the task needs (e.g. `references`)
    metric_inputs: ClassVar[tuple[str, ...]] = ()  # the metric input kinds it can feed
    answers_are_text: ClassVar[bool] = False  # answer filters and generation.n apply
    uses_stride: ClassVar[bool] = False
    needs_tokenizer: ClassVar[bool] = True  # prompts are rendered with the model's tokenizer (chat templates)

    def __init__(self, suite: Suite) -> None:
        self.suite = suite

    @classmethod
    def check_suite(cls, suite: Suite) -> None:
        """Task-specific rules of a suite (ValueError: the suite's validator reports it with the file)."""
        missing = [k for k in cls.required if getattr(suite, k) is None]
        if missing:
            raise ValueError(f"task `{cls.name}` needs {', '.join(f'`{k}`' for k in missing)}")

    @classmethod
    def check_settings(cls, s: Suite) -> None:
        """Rules checked after the metrics and generation settings are validated."""
        if not cls.answers_are_text and (s.filters or s.generation.n > 1):
            raise ValueError(f"filters and generation.n apply to task `generate`, not `{cls.name}`")
        if s.stride is not None and not cls.uses_stride:
            raise ValueError("`stride` applies to task `perplexity` only")

    # ------------------------------------------------------------ samples

    def build_samples(self, records: list[dict], tokenizer: Any, fewshot_pool: list[dict]) -> list[Sample]:
        """One `Sample` per record with its prompt rendered and its task fields validated."""
        from llmops.eval.tasks import PromptBuilder, Sample

        builder = PromptBuilder(self.suite, tokenizer, fewshot_pool, self)
        samples = []
        for i, record in enumerate(records):
            prompt, special, messages = builder.render(record, i)
            sample = Sample(index=i, prompt=prompt, add_special_tokens=special, messages=messages)
            self.fill(sample, record, i)
            samples.append(sample)
        return samples

    def fill(self, sample: Sample, record: dict, index: int) -> None:
        """Set the sample's task fields (references, choices...) from its record."""

    def fewshot_target(self, record: dict, index: int) -> str:
        """How a few-shot example's answer is written when the suite has no `target_template`."""
        raise NotImplementedError(f"task `{self.name}` has no few-shot answers")

    fewshot_answer_prefix: str = " "  # between a few-shot example's prompt and its answer (template prompts)

    # ------------------------------------------------------------ model calls

    @abstractmethod
    def requests(self, sample: Sample) -> list[Request]:
        """What the model is asked for this sample."""

    @abstractmethod
    def outputs(self, sample: Sample, answers: list[Any]) -> dict[str, Any]:
        """The sample's raw outputs (JSON; what the result cache stores) from the answers to its requests."""

    def execute(self, backend: Backend, samples: list[Sample]) -> list[dict[str, Any]]:
        """Raw outputs of every sample: all requests answered together (one backend call per kind)."""
        asked = [self.requests(s) for s in samples]
        answers = iter(answer(backend, [r for rs in asked for r in rs]))
        return [self.outputs(s, [next(answers) for _ in rs]) for s, rs in zip(samples, asked)]

    @property
    def deterministic(self) -> bool:
        """Whether the outputs are a function of the requests (no sampling): then in fp32 they
        do not depend on the batch size, which leaves the cache key."""
        return True

    def effective_generation(self, backend: Backend) -> dict[str, Any] | None:
        """The decoding configuration the engine ran with (provenance), where the task decodes."""
        return None

    def window_needed(self, samples: list[Sample], tokenizer: Any) -> int | None:
        """Tokens the longest request needs, so an engine reserving memory per position (vLLM) is
        sized for this run; None: the model's window."""
        return None

    # ------------------------------------------------------------ scoring

    def metric_arguments(self, metric: Metric, samples: list[Sample], raw: list[dict[str, Any]]) -> tuple:
        """The positional arguments of `metric.compute` for this task's outputs."""
        raise ValueError(f"metric `{metric.name}` ({metric.input_kind}) does not apply to task `{self.name}`")

    @abstractmethod
    def sample_fields(self, sample: Sample, raw: dict[str, Any], i: int, metrics: list[Metric]) -> dict[str, Any]:
        """The task's fields of the sample's samples.jsonl row (after index and add_special_tokens)."""


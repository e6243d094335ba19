"""`task: multiple_choice`: the log-likelihood of every choice after the prompt (lm-eval's `acc`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from llmops.eval.backends.base import Loglikelihood, encode_prompt
from llmops.eval.requests import LoglikelihoodRequest
from llmops.eval.task_types.base import TaskType

if TYPE_CHECKING:
    from llmops.eval.metrics.base import Metric
    from llmops.eval.tasks import Sample


class MultipleChoiceTask(TaskType):
    name = "multiple_choice"
    description = "score each choice's log-likelihood after the prompt (accuracy)"
    required = ("prompt", "choices", "answer")
    metric_inputs = ("choices",)

    def fill(self, sample: Sample, record: dict, index: int) -> None:
        from llmops.eval.tasks import choice_fields

        sample.choices, sample.gold = choice_fields(self.suite, record, index)

    def fewshot_target(self, record: dict, index: int) -> str:
        from llmops.eval.tasks import choice_fields

        choices, gold = choice_fields(self.suite, record, index)
        return choices[gold]

    @property
    def fewshot_answer_prefix(self) -> str:  # type: ignore[override]
        return self.suite.choice_prefix

    def requests(self, sample: Sample) -> list[LoglikelihoodRequest]:
        return [LoglikelihoodRequest(sample.request, self.suite.choice_prefix + c) for c in sample.choices]

    def outputs(self, sample: Sample, answers: list[Loglikelihood]) -> dict[str, Any]:
        return {"logprobs": [x.logprob for x in answers], "n_tokens": [x.n_tokens for x in answers]}

    def window_needed(self, samples: list[Sample], tokenizer: Any) -> int | None:
        longest = max(len(encode_prompt(tokenizer, s.request)) for s in samples)
        extra = max(len(tokenizer(self.suite.choice_prefix + c, add_special_tokens=False)["input_ids"])
                    for s in samples for c in s.choices)
        needed = longest + extra + 2  # the scored token and one generated position (see `context_window`)
        return needed if self.suite.max_length is None else max(needed, self.suite.max_length + 2)

    def metric_arguments(self, metric: Metric, samples: list[Sample], raw: list[dict[str, Any]]) -> tuple:
        if metric.input_kind == "choices":  # normalised by the choice's own length, as lm-eval
            return [r["logprobs"] for r in raw], [s.choices for s in samples], [s.gold for s in samples]
        return super().metric_arguments(metric, samples, raw)

    def sample_fields(self, sample: Sample, raw: dict[str, Any], i: int, metrics: list[Metric]) -> dict[str, Any]:
        return {"prompt": sample.prompt, "choices": sample.choices, "gold": sample.gold,
                "prediction": int(np.argmax(raw["logprobs"])), "logprobs": raw["logprobs"]}

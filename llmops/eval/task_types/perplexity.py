"""`task: perplexity`: the rolling log-likelihood of whole texts (lm-eval's `loglikelihood_rolling`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from llmops.errors import DataError
from llmops.eval.backends.base import Loglikelihood
from llmops.eval.requests import RollingLoglikelihoodRequest
from llmops.eval.task_types.base import TaskType

if TYPE_CHECKING:
    from llmops.eval.metrics.base import Metric
    from llmops.eval.tasks import Sample


class PerplexityTask(TaskType):
    name = "perplexity"
    description = "log-likelihood of whole texts in rolling windows (perplexity, bits per byte)"
    required = ("text",)
    metric_inputs = ("loglikelihood",)
    uses_stride = True
    needs_tokenizer = False  # texts are not rendered; the backend tokenises them itself

    def build_samples(self, records: list[dict], tokenizer: Any, fewshot_pool: list[dict]) -> list[Sample]:
        from llmops.eval.tasks import Sample, _field

        samples = []
        for i, r in enumerate(records):
            text = _field(r, self.suite.text, i)
            if not isinstance(text, str) or not text:
                raise DataError(f"record {i}: `{self.suite.text}` must be a non-empty string")
            samples.append(Sample(index=i, text=text))
        return samples

    def requests(self, sample: Sample) -> list[RollingLoglikelihoodRequest]:
        return [RollingLoglikelihoodRequest(sample.text, self.suite.stride)]

    def outputs(self, sample: Sample, answers: list[Loglikelihood]) -> dict[str, Any]:
        return {"logprob": answers[0].logprob, "n_tokens": answers[0].n_tokens}

    def metric_arguments(self, metric: Metric, samples: list[Sample], raw: list[dict[str, Any]]) -> tuple:
        if metric.input_kind == "loglikelihood":
            return [r["logprob"] for r in raw], [r["n_tokens"] for r in raw], [s.text for s in samples]
        return super().metric_arguments(metric, samples, raw)

    def sample_fields(self, sample: Sample, raw: dict[str, Any], i: int, metrics: list[Metric]) -> dict[str, Any]:
        return {"text": sample.text, "logprob": raw["logprob"], "n_tokens": raw["n_tokens"]}

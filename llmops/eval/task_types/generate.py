"""`task: generate`: decode an answer (or `generation.n` samples) per prompt, filter, score as text.

Sampling lives here too: ``generation.n > 1`` asks n `GenerateRequest`s per prompt;
text metrics see the `aggregate` of the filtered samples (first or majority vote),
``pass_at_k`` every sample, an ``llm_judge`` metric the question and the aggregated answer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from llmops.eval.backends.base import Generation, GenerationParams, encode_prompt
from llmops.eval.filters import aggregate, apply_filters
from llmops.eval.requests import GenerateRequest
from llmops.eval.task_types.base import TaskType

if TYPE_CHECKING:
    from llmops.eval.backends.base import Backend
    from llmops.eval.metrics.base import Metric
    from llmops.eval.suites import Suite
    from llmops.eval.tasks import Sample


def generation_params(suite: Suite) -> GenerationParams:
    """The suite's decoding settings as backends take them."""
    g = suite.generation
    return GenerationParams(g.max_new_tokens, g.temperature, g.top_p, tuple(g.stop), suite.seed, top_k=g.top_k,
                            repetition_penalty=g.repetition_penalty)


class GenerateTask(TaskType):
    name = "generate"
    description = "decode answers and score them as text (filters, n samples, majority vote, pass@k, judge)"
    required = ("prompt", "references")
    metric_inputs = ("text", "samples", "judged")
    answers_are_text = True

    def __init__(self, suite: Suite) -> None:
        super().__init__(suite)
        self.params = generation_params(suite)

    def fill(self, sample: Sample, record: dict, index: int) -> None:
        from llmops.eval.tasks import references_of

        sample.references = references_of(self.suite, record, index)

    def fewshot_target(self, record: dict, index: int) -> str:
        from llmops.eval.tasks import references_of

        return references_of(self.suite, record, index)[0]

    def requests(self, sample: Sample) -> list[GenerateRequest]:
        return [GenerateRequest(sample.request, self.params)] * self.suite.generation.n

    def outputs(self, sample: Sample, answers: list[Generation]) -> dict[str, Any]:
        first = answers[0]
        row: dict[str, Any] = {"output": first.text, "n_tokens": len(first.token_ids), "finish_reason": first.finish_reason}
        if len(answers) > 1:
            row["outputs"] = [g.text for g in answers]
        return row

    @property
    def deterministic(self) -> bool:
        return self.suite.generation.temperature == 0.0

    def effective_generation(self, backend: Backend) -> dict[str, Any] | None:
        return backend.effective_generation_config(self.params)

    def window_needed(self, samples: list[Sample], tokenizer: Any) -> int | None:
        longest = max(len(encode_prompt(tokenizer, s.request)) for s in samples)
        needed = longest + self.suite.generation.max_new_tokens + 2  # see `context_window`
        return needed if self.suite.max_length is None else max(needed, self.suite.max_length + 2)

    # ------------------------------------------------------------ scoring

    def answers(self, raw: list[dict[str, Any]]) -> list[list[str]]:
        """Every sample's outputs after the suite's filters (one list per prompt)."""
        return [[apply_filters(self.suite.filters, text) for text in r.get("outputs", [r["output"]])] for r in raw]

    def metric_arguments(self, metric: Metric, samples: list[Sample], raw: list[dict[str, Any]]) -> tuple:
        answers = self.answers(raw)
        references = [s.references for s in samples]
        if metric.input_kind == "text":
            return [aggregate(a, self.suite.aggregate) for a in answers], references
        if metric.input_kind == "samples":
            return answers, references
        if metric.input_kind == "judged":
            return [s.question for s in samples], [aggregate(a, self.suite.aggregate) for a in answers], references
        return super().metric_arguments(metric, samples, raw)

    def sample_fields(self, sample: Sample, raw: dict[str, Any], i: int, metrics: list[Metric]) -> dict[str, Any]:
        row: dict[str, Any] = {"prompt": sample.prompt, "output": raw["output"], "references": sample.references,
                               "n_tokens": raw["n_tokens"], "finish_reason": raw.get("finish_reason")}
        if self.suite.filters or "outputs" in raw:
            answers = self.answers([raw])[0]
            row.update(answer=aggregate(answers, self.suite.aggregate), answers=answers)
        if "outputs" in raw:
            row["outputs"] = raw["outputs"]
        judged = [m for m in metrics if m.input_kind == "judged" and getattr(m, "texts", None)]
        if judged:
            row["judgements"] = {m.outputs()[0]: m.texts[i] for m in judged}
        return row

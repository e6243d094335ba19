"""Base classes for the `evaluate` modules shipped in ``eval/metrics/<name>/<name>.py``.

``evaluate.load('rouge')`` by name fetches a script from the Hub and fails offline, so
llmops ships local modules: ``evaluate.load('eval/metrics/rouge')``. Each module is a
few lines delegating to `llmops.eval.metrics`, so both paths compute identical numbers.
Module scripts must import this module (not its classes): evaluate picks the first
EvaluationModule subclass found in the script's namespace as the metric.
"""

from __future__ import annotations

from typing import Any, ClassVar

import datasets
import evaluate

from llmops.eval.metrics import build_metric

_CITATION = "llmops evaluation harness; see docs/evaluation.md"


class TextMetricModule(evaluate.Metric):
    """predictions: list[str]; references: list[str] or list[list[str]] (per sample)."""

    metric_name: ClassVar[str]
    description: ClassVar[str] = ""

    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=self.description or f"llmops `{self.metric_name}` metric",
            citation=_CITATION,
            inputs_description="predictions: list of strings; references: list of strings or list of lists of strings",
            features=[
                datasets.Features({"predictions": datasets.Value("string"),
                                   "references": datasets.Sequence(datasets.Value("string"))}),
                datasets.Features({"predictions": datasets.Value("string"), "references": datasets.Value("string")}),
            ],
        )

    def _compute(self, predictions: list[str], references: list[Any], **options: Any) -> dict[str, Any]:
        refs = [[r] if isinstance(r, str) else list(r) for r in references]
        metric = build_metric(self.metric_name, **options)
        results = metric.compute(list(predictions), refs)
        if len(results) == 1:
            (res,) = results.values()
            return {"score": res.score, "signature": res.signature}
        return {**{name: res.score for name, res in results.items()}, "signature": metric.signature()}


class SamplesMetricModule(evaluate.Metric):
    """predictions: per-sample list of answers (several samples each); references: str or list[str]."""

    metric_name: ClassVar[str] = "pass_at_k"

    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description="pass@k over several samples per prompt (unbiased estimator, exact match after strip).",
            citation=_CITATION,
            inputs_description="predictions: list of lists of strings; references: list of strings or lists of strings",
            features=[
                datasets.Features({"predictions": datasets.Sequence(datasets.Value("string")),
                                   "references": datasets.Sequence(datasets.Value("string"))}),
                datasets.Features({"predictions": datasets.Sequence(datasets.Value("string")),
                                   "references": datasets.Value("string")}),
            ],
        )

    def _compute(self, predictions: list[list[str]], references: list[Any], **options: Any) -> dict[str, Any]:
        refs = [[r] if isinstance(r, str) else list(r) for r in references]
        metric = build_metric(self.metric_name, **options)
        results = metric.compute([list(p) for p in predictions], refs)
        return {**{name: res.score for name, res in results.items()}, "signature": metric.signature()}


class JudgeModule(evaluate.Metric):
    """predictions: responses; references: reference answers (or empty strings); questions (keyword):
    the questions; options as the `llm_judge` metric (model, backend, mode, rubric, ...)."""

    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description="LLM-as-judge: rubric rating 1-10 or pairwise win rate against a baseline run.",
            citation=_CITATION,
            inputs_description="predictions: list of strings; references: list of strings; questions: list of strings",
            features=datasets.Features({"predictions": datasets.Value("string"), "references": datasets.Value("string")}),
        )

    def _compute(self, predictions, references, questions=None, **options: Any) -> dict[str, Any]:
        if questions is None or len(questions) != len(predictions):
            raise ValueError("llm_judge needs questions=[...], one per prediction")
        metric = build_metric("llm_judge", **options)
        results = metric.compute(list(questions), list(predictions), [[r] if r else [] for r in references])
        (res,) = results.values()
        return {res.name: res.score, "parse_failures": res.extra["parse_failures"], "signature": metric.signature()}


class MultipleChoiceModule(evaluate.Metric):
    """predictions: per-sample list of choice log-likelihoods; references: gold index;
    choices (keyword): per-sample list of choice texts (for the per-character and per-byte
    normalisations; ``choice_lengths`` in characters still gives accuracy_norm)."""

    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description="Multiple-choice accuracy from log-likelihoods (raw and per-character normalised).",
            citation=_CITATION,
            inputs_description="predictions: list of lists of floats; references: list of ints; choice_lengths",
            features=datasets.Features({"predictions": datasets.Sequence(datasets.Value("float64")),
                                        "references": datasets.Value("int64")}),
        )

    def _compute(self, predictions, references, choices=None, choice_lengths=None) -> dict[str, float]:
        texts = choices or [["x" * n for n in ns] for ns in (choice_lengths or [[1] * len(p) for p in predictions])]
        res = build_metric("accuracy").compute([list(p) for p in predictions], texts, list(references))
        out = {name: r.score for name, r in res.items()}
        if choices is None:
            out.pop("accuracy_bytes")
            if choice_lengths is None:
                out.pop("accuracy_norm")
        return out


class PerplexityModule(evaluate.Metric):
    """predictions: per-text total log-likelihood; references: per-text token count;
    texts (keyword): the texts, for word/byte perplexity and bits per byte."""

    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description="Corpus perplexity exp(sum NLL / sum tokens) from per-text log-likelihoods.",
            citation=_CITATION,
            inputs_description="predictions: list of floats (log-likelihoods); references: list of ints (tokens)",
            features=datasets.Features({"predictions": datasets.Value("float64"), "references": datasets.Value("int64")}),
        )

    def _compute(self, predictions, references, texts=None) -> dict[str, float]:
        res = build_metric("perplexity").compute(list(predictions), list(references), texts or ["x"] * len(references))
        return {name: r.score for name, r in res.items() if texts is not None or name == "perplexity"}

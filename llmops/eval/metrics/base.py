"""The metric interface: per-sample sufficient statistics plus a reduction.

Every score is computed as ``reduce(stats.sum(axis=0))`` over a per-sample statistics
matrix of shape (n, k). Corpus metrics (BLEU, chrF, TER, perplexity) and mean-of-sample
metrics (ROUGE, exact match, accuracy) then share one code path for the headline score,
bootstrap intervals and paired significance tests, which resample *rows* of the matrix:
resampling sentence-level BLEU scores instead would test a different metric.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import numpy as np

InputKind = Literal["text", "choices", "loglikelihood", "samples", "judged"]


@dataclass
class MetricResult:
    """One named score of a corpus and the statistics it was reduced from."""

    name: str
    score: float
    stats: np.ndarray  # (n_samples, k) sufficient statistics
    binary: bool  # per-sample values are 0/1 (paired test: McNemar)
    higher_is_better: bool
    signature: str
    extra: dict[str, Any] = field(default_factory=dict)


class Metric(ABC):
    """A metric family producing one or more named scores (``rouge`` → rouge1, rouge2, ...).

    Subclasses implement `sample_stats` for their input kind and `reduce`; `spec`
    returns what `llmops.eval.metrics.build_metric` needs to rebuild an equal metric,
    so paired comparisons can re-reduce statistics read back from disk.
    """

    name: ClassVar[str]
    input_kind: ClassVar[InputKind] = "text"

    def __init__(self, **options: Any) -> None:
        self.options = options

    @abstractmethod
    def outputs(self) -> tuple[str, ...]:
        """Names of the scores this metric produces."""

    @abstractmethod
    def reduce(self, output: str, sums: np.ndarray) -> float:
        """Corpus score of `output` from column sums of its statistics."""

    def binary(self, output: str) -> bool:
        return False

    def tokenizer_dependent(self, output: str) -> bool:
        """Whether the score is counted in the model's own tokens (then two models with
        different tokenizers cannot be compared on it)."""
        return False

    def higher_is_better(self, output: str) -> bool:
        return True

    def signature(self) -> str:
        opts = ",".join(f"{k}={v}" for k, v in sorted(self.options.items()))
        return f"{self.name}" + (f"|{opts}" if opts else "")

    def spec(self) -> dict[str, Any]:
        return {"name": self.name, **self.options}

    def results(self, stats: dict[str, np.ndarray]) -> dict[str, MetricResult]:
        """Wrap per-output statistics into `MetricResult`s with their corpus scores."""
        return {
            out: MetricResult(
                name=out,
                score=self.reduce(out, stats[out].sum(axis=0)),
                stats=stats[out],
                binary=self.binary(out),
                higher_is_better=self.higher_is_better(out),
                signature=self.signature(),
            )
            for out in self.outputs()
        }

    def per_sample(self, output: str, stats: np.ndarray) -> list[float]:
        """The corpus formula applied to each sample on its own (for samples.jsonl)."""
        return [self.reduce(output, row) for row in stats]


class TextMetric(Metric):
    """Scores predictions against one or more references per sample."""

    input_kind: ClassVar[InputKind] = "text"

    @abstractmethod
    def sample_stats(self, predictions: list[str], references: list[list[str]]) -> dict[str, np.ndarray]:
        """Per-output (n, k) statistics; `references[i]` holds the references of sample i."""

    def compute(self, predictions: list[str], references: list[list[str]]) -> dict[str, MetricResult]:
        check_pairs(predictions, references)
        return self.results(self.sample_stats(predictions, references))


def check_pairs(predictions: list[str], references: list[list[str]]) -> None:
    """Reject shapes that would silently misalign predictions and references."""
    from llmops.errors import DataError

    if len(predictions) != len(references):
        raise DataError(f"{len(predictions)} predictions but {len(references)} reference sets")
    if not predictions:
        raise DataError("nothing to score: no predictions")
    for i, refs in enumerate(references):
        if isinstance(refs, str) or not refs:
            raise DataError(f"sample {i}: references must be a non-empty list of strings")

"""BLEU, chrF, chrF++ and TER through sacrebleu, with its signatures.

sacrebleu wants references as K *streams* of N segments (``refs[k][i]`` is the k-th
reference of segment i); llmops passes references per sample (``refs[i][k]``) and
transposes here, padding with ``None`` where samples have fewer references (sacrebleu's
own convention for a variable number of references). Per-segment statistics come from
``_extract_corpus_statistics`` — the same private hook sacrebleu's significance module
uses — and the corpus score is ``_compute_score_from_stats`` of their sum, exactly as
``corpus_score`` computes it.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from llmops.errors import ConfigError
from llmops.eval.metrics.base import TextMetric


def reference_streams(references: list[list[str]]) -> list[list[str | None]]:
    """Per-sample references → sacrebleu's K streams of N segments (None-padded)."""
    k = max(len(r) for r in references)
    return [[refs[j] if j < len(refs) else None for refs in references] for j in range(k)]


class _SacreBleuMetric(TextMetric):
    output: ClassVar[str]
    _defaults: ClassVar[dict[str, Any]] = {}

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._metric = self._make()
        self._signature: str | None = None

    def _make(self):
        try:
            return self._factory(**{**self._defaults, **self.options})
        except TypeError as exc:
            raise ConfigError(f"metric `{self.name}`: invalid option ({exc})") from None

    def _factory(self, **kwargs: Any):  # pragma: no cover - overridden
        raise NotImplementedError

    def outputs(self) -> tuple[str, ...]:
        return (self.output,)

    def sample_stats(self, predictions: list[str], references: list[list[str]]) -> dict[str, np.ndarray]:
        streams = reference_streams(references)
        self._metric._check_corpus_score_args(predictions, streams)
        stats = self._metric._extract_corpus_statistics(predictions, streams)
        self._signature = str(self._metric.get_signature())
        return {self.output: np.asarray(stats, dtype=self._dtype)}

    _dtype: ClassVar[type] = np.int64

    def reduce(self, output: str, sums: np.ndarray) -> float:
        values = [v.item() for v in np.asarray(sums, dtype=self._dtype)]
        return float(self._metric._compute_score_from_stats(values).score)

    def signature(self) -> str:
        """sacrebleu's signature (nrefs is known only after references were seen)."""
        return self._signature or str(self._metric.get_signature())

    def corpus_score(self, predictions: list[str], references: list[list[str]]):
        """sacrebleu's own Score object (used for verbose output)."""
        streams = reference_streams(references)
        return self._make().corpus_score(predictions, streams)


class BLEU(_SacreBleuMetric):
    """Corpus BLEU (0-100); options are sacrebleu.BLEU's (tokenize, lowercase, smooth_method, ...)."""

    name = "bleu"
    output = "bleu"

    def _factory(self, **kwargs: Any):
        from sacrebleu.metrics import BLEU as _BLEU

        return _BLEU(**kwargs)


class CHRF(_SacreBleuMetric):
    """Corpus chrF (0-100); options are sacrebleu.CHRF's (char_order, word_order, beta, ...)."""

    name = "chrf"
    output = "chrf"

    def _factory(self, **kwargs: Any):
        from sacrebleu.metrics import CHRF as _CHRF

        return _CHRF(**kwargs)


class CHRFPP(CHRF):
    """chrF++: chrF with word bigrams (word_order=2), sacrebleu's definition."""

    name = "chrf++"
    output = "chrf++"
    _defaults: ClassVar[dict[str, Any]] = {"word_order": 2}


class TER(_SacreBleuMetric):
    """Corpus TER (0-100, lower is better); options are sacrebleu.TER's."""

    name = "ter"
    output = "ter"
    _dtype: ClassVar[type] = np.float64

    def _factory(self, **kwargs: Any):
        from sacrebleu.metrics import TER as _TER

        return _TER(**kwargs)

    def higher_is_better(self, output: str) -> bool:
        return False

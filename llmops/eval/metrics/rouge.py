"""ROUGE-1/2/L/Lsum through rouge-score: the mean of per-segment F-measures.

This is the exact mean, not rouge-score's ``BootstrapAggregator`` median (which is what
``evaluate.load('rouge')`` reports); our intervals come from `llmops.eval.stats`.
With several references a sample takes the best F per ROUGE type, as
``RougeScorer.score_multi`` does. ROUGE-Lsum treats newlines as sentence boundaries;
``split_sentences=True`` first splits with NLTK's Punkt algorithm in its untrained form
(rouge-score's own ``split_summaries`` needs downloaded Punkt data, which we never fetch).
The scorer is `rouge_core.RougeCore`: rouge-score's tokenizer and counting, proven equal to
``RougeScorer``, without the nltk import that ``rouge_score.rouge_scorer`` always runs.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from llmops.errors import ConfigError
from llmops.eval.metrics.base import TextMetric

ROUGE_TYPES = ("rouge1", "rouge2", "rougeL", "rougeLsum")


def split_sentences(text: str) -> str:
    """One sentence per line (Punkt, untrained, deterministic, offline)."""
    from nltk.tokenize.punkt import PunktSentenceTokenizer

    return "\n".join(s for line in text.split("\n") for s in PunktSentenceTokenizer().tokenize(line))


class Rouge(TextMetric):
    """Options: ``rouge_types`` (subset of rouge1/rouge2/rougeL/rougeLsum), ``use_stemmer``,
    ``split_sentences``."""

    name = "rouge"

    def __init__(self, **options: Any) -> None:
        unknown = set(options) - {"rouge_types", "use_stemmer", "split_sentences"}
        if unknown:
            raise ConfigError(f"metric `rouge`: unknown option(s) {sorted(unknown)} (rouge_types, use_stemmer, split_sentences)")
        types = tuple(options.get("rouge_types") or ROUGE_TYPES)
        bad = [t for t in types if t not in ROUGE_TYPES]
        if bad:
            raise ConfigError(f"metric `rouge`: unknown rouge_types {bad} (choose from {list(ROUGE_TYPES)})")
        super().__init__(**options)
        self.types = types
        self.use_stemmer = bool(options.get("use_stemmer", False))
        self.split = bool(options.get("split_sentences", False))

    def outputs(self) -> tuple[str, ...]:
        return self.types

    def sample_stats(self, predictions: list[str], references: list[list[str]]) -> dict[str, np.ndarray]:
        from llmops.eval.metrics.rouge_core import RougeCore

        scorer = RougeCore(list(self.types), use_stemmer=self.use_stemmer)
        values = np.zeros((len(predictions), len(self.types)))
        for i, (pred, refs) in enumerate(zip(predictions, references)):
            if self.split:
                pred, refs = split_sentences(pred), [split_sentences(r) for r in refs]
            scores = scorer.score_multi(refs, pred) if len(refs) > 1 else scorer.score(refs[0], pred)
            values[i] = [scores[t].fmeasure for t in self.types]
        ones = np.ones((len(predictions), 1))
        return {t: np.hstack([values[:, [j]], ones]) for j, t in enumerate(self.types)}

    def reduce(self, output: str, sums: np.ndarray) -> float:
        return float(sums[0] / sums[1]) if sums[1] else 0.0

    def signature(self) -> str:
        import importlib.metadata as md

        return (
            f"rouge|types:{'+'.join(self.types)}|stem:{'yes' if self.use_stemmer else 'no'}"
            f"|split:{'punkt' if self.split else 'newline'}|agg:mean|version:{md.version('rouge-score')}"
        )

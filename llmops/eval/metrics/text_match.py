"""Exact match and SQuAD-style token F1, with explicit normalisation options.

Normalisation follows the SQuAD v1.1 evaluation script (lower-case, drop punctuation,
drop the articles a/an/the, collapse whitespace), each step switchable, so that
``normalize: squad`` reproduces the published numbers and ``normalize: none`` is a
strict string comparison. With several references a sample takes the best value.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np

from llmops.errors import ConfigError
from llmops.eval.metrics.base import TextMetric

_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
_PUNCT = set(string.punctuation)
_PRESETS = {
    "none": {},
    "strip": {"strip": True},
    "squad": {"lowercase": True, "punctuation": True, "articles": True, "whitespace": True},
}


@dataclass(frozen=True)
class Normalizer:
    strip: bool = False
    lowercase: bool = False
    punctuation: bool = False
    articles: bool = False
    whitespace: bool = False

    @classmethod
    def from_options(cls, options: dict[str, Any], metric: str, default: str) -> Normalizer:
        preset = options.get("normalize", default)
        if preset not in _PRESETS:
            raise ConfigError(f"metric `{metric}`: normalize must be one of {list(_PRESETS)}, got {preset!r}")
        flags = dict(_PRESETS[preset])
        for key in ("strip", "lowercase", "punctuation", "articles", "whitespace"):
            if key in options:
                flags[key] = bool(options[key])
        unknown = set(options) - {"normalize", *cls.__dataclass_fields__}
        if unknown:
            raise ConfigError(f"metric `{metric}`: unknown option(s) {sorted(unknown)}")
        return cls(**flags)

    def __call__(self, text: str) -> str:
        if self.lowercase:
            text = text.lower()
        if self.punctuation:
            text = "".join(ch for ch in text if ch not in _PUNCT)
        if self.articles:
            text = _ARTICLES.sub(" ", text)
        if self.whitespace:
            text = " ".join(text.split())
        if self.strip:
            text = text.strip()
        return text


def token_f1(prediction: str, reference: str) -> float:
    """SQuAD token F1 of two normalised strings (both empty → 1, one empty → 0)."""
    pred, ref = prediction.split(), reference.split()
    if not pred or not ref:
        return float(pred == ref)
    common = sum((Counter(pred) & Counter(ref)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


class _MatchMetric(TextMetric):
    default_normalize = "strip"

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.normalizer = Normalizer.from_options(options, self.name, self.default_normalize)

    def outputs(self) -> tuple[str, ...]:
        return (self.name,)

    def _value(self, pred: str, ref: str) -> float:
        raise NotImplementedError

    def sample_stats(self, predictions: list[str], references: list[list[str]]) -> dict[str, np.ndarray]:
        norm = self.normalizer
        values = [max(self._value(norm(p), norm(r)) for r in refs) for p, refs in zip(predictions, references)]
        return {self.name: np.column_stack([values, np.ones(len(values))])}

    def reduce(self, output: str, sums: np.ndarray) -> float:
        return float(sums[0] / sums[1]) if sums[1] else 0.0

    def signature(self) -> str:
        n = self.normalizer
        flags = [k for k in ("strip", "lowercase", "punctuation", "articles", "whitespace") if getattr(n, k)]
        return f"{self.name}|norm:{'+'.join(flags) or 'none'}"


class ExactMatch(_MatchMetric):
    """Fraction of samples whose normalised prediction equals a normalised reference."""

    name = "exact_match"

    def _value(self, pred: str, ref: str) -> float:
        return float(pred == ref)

    def binary(self, output: str) -> bool:
        return True


class TokenF1(_MatchMetric):
    """Mean SQuAD token F1 (default normalisation: squad)."""

    name = "token_f1"
    default_normalize = "squad"

    def _value(self, pred: str, ref: str) -> float:
        return token_f1(pred, ref)

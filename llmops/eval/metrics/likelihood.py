"""Metrics computed from model log-likelihoods: multiple-choice accuracy and perplexity.

Multiple choice follows the convention of lm-evaluation-harness: the predicted choice
is the one whose continuation has the highest total log-likelihood (``accuracy``), or
the highest log-likelihood per character of the choice text (``accuracy_norm``), which
removes the bias towards short answers. Perplexity is a corpus metric:
``exp(sum of NLL / sum of tokens)``, so its statistics are (NLL, tokens) per text.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np

from llmops.errors import ConfigError, DataError
from llmops.eval.metrics.base import InputKind, Metric, MetricResult


class MultipleChoice(Metric):
    name = "accuracy"
    input_kind: ClassVar[InputKind] = "choices"

    def __init__(self, **options: Any) -> None:
        if options:
            raise ConfigError(f"metric `accuracy`: takes no options, got {sorted(options)}")
        super().__init__()

    def outputs(self) -> tuple[str, ...]:
        return ("accuracy", "accuracy_norm")

    def binary(self, output: str) -> bool:
        return True

    def predictions(self, logprobs: list[list[float]], choice_chars: list[list[int]]) -> tuple[list[int], list[int]]:
        """(raw argmax, length-normalised argmax) per sample."""
        raw = [int(np.argmax(lp)) for lp in logprobs]
        norm = [int(np.argmax([lp / max(n, 1) for lp, n in zip(lps, ns)])) for lps, ns in zip(logprobs, choice_chars)]
        return raw, norm

    def sample_stats(
        self, logprobs: list[list[float]], choice_chars: list[list[int]], gold: list[int]
    ) -> dict[str, np.ndarray]:
        if not (len(logprobs) == len(choice_chars) == len(gold)) or not gold:
            raise DataError("multiple choice: logprobs, choice lengths and gold answers must be equally long and non-empty")
        for i, (lps, g) in enumerate(zip(logprobs, gold)):
            if not 0 <= g < len(lps):
                raise DataError(f"sample {i}: gold answer index {g} is outside its {len(lps)} choices")
        raw, norm = self.predictions(logprobs, choice_chars)
        ones = np.ones(len(gold))
        return {
            "accuracy": np.column_stack([np.equal(raw, gold).astype(float), ones]),
            "accuracy_norm": np.column_stack([np.equal(norm, gold).astype(float), ones]),
        }

    def compute(self, logprobs: list[list[float]], choice_chars: list[list[int]], gold: list[int]) -> dict[str, MetricResult]:
        return self.results(self.sample_stats(logprobs, choice_chars, gold))

    def reduce(self, output: str, sums: np.ndarray) -> float:
        return float(sums[0] / sums[1]) if sums[1] else 0.0

    def signature(self) -> str:
        return "accuracy|select:argmax-loglik|norm:per-char"


class Perplexity(Metric):
    name = "perplexity"
    input_kind: ClassVar[InputKind] = "loglikelihood"

    def __init__(self, **options: Any) -> None:
        if options:
            raise ConfigError(f"metric `perplexity`: takes no options, got {sorted(options)}")
        super().__init__()

    def outputs(self) -> tuple[str, ...]:
        return ("perplexity",)

    def higher_is_better(self, output: str) -> bool:
        return False

    def sample_stats(self, logprobs: list[float], n_tokens: list[int]) -> dict[str, np.ndarray]:
        if len(logprobs) != len(n_tokens) or not n_tokens:
            raise DataError("perplexity: log-likelihoods and token counts must be equally long and non-empty")
        return {"perplexity": np.column_stack([-np.asarray(logprobs, dtype=float), np.asarray(n_tokens, dtype=float)])}

    def compute(self, logprobs: list[float], n_tokens: list[int]) -> dict[str, MetricResult]:
        return self.results(self.sample_stats(logprobs, n_tokens))

    def reduce(self, output: str, sums: np.ndarray) -> float:
        return math.exp(sums[0] / sums[1]) if sums[1] else float("nan")

    def signature(self) -> str:
        return "perplexity|exp(sum_nll/sum_tokens)|tokens:model"

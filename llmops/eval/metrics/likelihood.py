"""Metrics computed from model log-likelihoods: multiple-choice accuracy and perplexity.

Multiple choice follows lm-evaluation-harness (``acc``, ``acc_norm``, ``acc_bytes``): the
predicted choice is the one whose continuation has the highest total log-likelihood
(``accuracy``), the highest log-likelihood per character of the choice text itself —
not of the delimiter before it nor of the prompt (``accuracy_norm``) — or per UTF-8 byte
of the choice (``accuracy_bytes``). The last two remove the bias towards short answers.

Perplexity is a corpus metric: ``exp(sum of NLL / sum of units)``, its statistics are
(NLL, units) per text. ``perplexity`` counts the model's tokens, so it compares only
models that share a tokenizer; ``word_perplexity``, ``byte_perplexity`` and
``bits_per_byte`` count whitespace-separated words and UTF-8 bytes of the text exactly as
lm-evaluation-harness does, so they compare any two models.
"""

from __future__ import annotations

import math
import re
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
        return ("accuracy", "accuracy_norm", "accuracy_bytes")

    def binary(self, output: str) -> bool:
        return True

    @staticmethod
    def predictions(logprobs: list[list[float]], choices: list[list[str]]) -> dict[str, list[int]]:
        """Predicted choice index per sample: raw, per character and per byte of the choice
        (first maximum on ties, as numpy's argmax in lm-eval)."""
        def pick(lps: list[float], sizes: list[int]) -> int:
            return int(np.argmax(np.asarray(lps, dtype=float) / np.asarray(sizes, dtype=float)))

        return {
            "accuracy": [int(np.argmax(lp)) for lp in logprobs],
            "accuracy_norm": [pick(lps, [len(c) for c in cs]) for lps, cs in zip(logprobs, choices)],
            "accuracy_bytes": [pick(lps, [len(c.encode("utf-8")) for c in cs]) for lps, cs in zip(logprobs, choices)],
        }

    def sample_stats(self, logprobs: list[list[float]], choices: list[list[str]], gold: list[int]) -> dict[str, np.ndarray]:
        if not (len(logprobs) == len(choices) == len(gold)) or not gold:
            raise DataError("multiple choice: logprobs, choices and gold answers must be equally long and non-empty")
        for i, (lps, cs, g) in enumerate(zip(logprobs, choices, gold)):
            if len(lps) != len(cs):
                raise DataError(f"sample {i}: {len(lps)} log-likelihoods for {len(cs)} choices")
            if not 0 <= g < len(lps):
                raise DataError(f"sample {i}: gold answer index {g} is outside its {len(lps)} choices")
            if any(not c for c in cs):
                raise DataError(f"sample {i}: an empty choice cannot be length-normalised")
        ones = np.ones(len(gold))
        return {name: np.column_stack([np.equal(pred, gold).astype(float), ones])
                for name, pred in self.predictions(logprobs, choices).items()}

    def compute(self, logprobs: list[list[float]], choices: list[list[str]], gold: list[int]) -> dict[str, MetricResult]:
        return self.results(self.sample_stats(logprobs, choices, gold))

    def reduce(self, output: str, sums: np.ndarray) -> float:
        return float(sums[0] / sums[1]) if sums[1] else 0.0

    def signature(self) -> str:
        return "accuracy|select:argmax-loglik|norm:per-char-of-choice,per-byte-of-choice"


class Perplexity(Metric):
    name = "perplexity"
    input_kind: ClassVar[InputKind] = "loglikelihood"

    def __init__(self, **options: Any) -> None:
        if options:
            raise ConfigError(f"metric `perplexity`: takes no options, got {sorted(options)}")
        super().__init__()

    def outputs(self) -> tuple[str, ...]:
        return ("perplexity", "word_perplexity", "byte_perplexity", "bits_per_byte")

    def higher_is_better(self, output: str) -> bool:
        return False

    @staticmethod
    def count_words(text: str) -> int:
        """lm-evaluation-harness's word count (``len(re.split(r"\s+", text))``)."""
        return len(re.split(r"\s+", text))

    def sample_stats(self, logprobs: list[float], n_tokens: list[int], texts: list[str]) -> dict[str, np.ndarray]:
        if not (len(logprobs) == len(n_tokens) == len(texts)) or not n_tokens:
            raise DataError("perplexity: log-likelihoods, token counts and texts must be equally long and non-empty")
        nll = -np.asarray(logprobs, dtype=float)
        words = np.asarray([self.count_words(t) for t in texts], dtype=float)
        nbytes = np.asarray([len(t.encode("utf-8")) for t in texts], dtype=float)
        return {
            "perplexity": np.column_stack([nll, np.asarray(n_tokens, dtype=float)]),
            "word_perplexity": np.column_stack([nll, words]),
            "byte_perplexity": np.column_stack([nll, nbytes]),
            "bits_per_byte": np.column_stack([nll, nbytes]),
        }

    def compute(self, logprobs: list[float], n_tokens: list[int], texts: list[str]) -> dict[str, MetricResult]:
        return self.results(self.sample_stats(logprobs, n_tokens, texts))

    def reduce(self, output: str, sums: np.ndarray) -> float:
        if not sums[1]:
            return float("nan")
        if output == "bits_per_byte":
            return float(sums[0] / sums[1] / math.log(2))
        return math.exp(sums[0] / sums[1])

    def tokenizer_dependent(self, output: str) -> bool:
        """Whether the score's unit is the model's token (not comparable across tokenizers)."""
        return output == "perplexity"

    def signature(self) -> str:
        return "perplexity|exp(sum_nll/sum_units)|units:tokens,words(re.split(\\s+)),utf8-bytes|bpb:nll/bytes/ln2"

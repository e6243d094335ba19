"""pass@k over several samples per prompt, with the unbiased estimator of Chen et al. (2021).

With n samples of which c are correct, pass@k = 1 - C(n-c, k) / C(n, k): the chance that
at least one of k samples drawn without replacement is correct. Averaging the per-prompt
estimate is unbiased, unlike sampling exactly k outputs. "Correct" is an exact match of
the filtered answer with a reference, normalised as ``exact_match`` does.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from llmops.errors import ConfigError, DataError
from llmops.eval.metrics.base import InputKind, Metric, MetricResult, check_pairs
from llmops.eval.metrics.text_match import Normalizer


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k for one prompt: n samples, c of them correct."""
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"pass@k needs 0 <= c <= n and 1 <= k <= n (n={n}, c={c}, k={k})")
    if n - c < k:
        return 1.0
    # 1 - prod_{i=n-c+1}^{n} (1 - k/i), stable for large n
    return float(1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))


class PassAtK(Metric):
    """``{name: pass_at_k, k: [1, 4]}``: one score per k (``pass@1``, ``pass@4``)."""

    name = "pass_at_k"
    input_kind: ClassVar[InputKind] = "samples"

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        ks = options.get("k", [1])
        ks = [ks] if isinstance(ks, int) else ks
        if not isinstance(ks, list) or not ks or not all(isinstance(k, int) and k >= 1 for k in ks):
            raise ConfigError(f"metric `pass_at_k`: k must be a positive integer or a list of them, got {ks!r}")
        self.ks = sorted(set(ks))
        self.normalizer = Normalizer.from_options({k: v for k, v in options.items() if k != "k"}, self.name, "strip")

    def outputs(self) -> tuple[str, ...]:
        return tuple(f"pass@{k}" for k in self.ks)

    def binary(self, output: str) -> bool:
        return False  # per-prompt estimates are fractions: paired bootstrap, not McNemar

    def reduce(self, output: str, sums: np.ndarray) -> float:
        return float(sums[0] / sums[1]) if sums[1] else 0.0

    def compute(self, samples: list[list[str]], references: list[list[str]]) -> dict[str, MetricResult]:
        check_pairs([s[0] if s else "" for s in samples], references)
        norm = self.normalizer
        n_min = min(len(s) for s in samples)
        if n_min < max(self.ks):
            raise DataError(f"pass@{max(self.ks)} needs at least {max(self.ks)} samples per prompt "
                            f"(generation.n), got {n_min}")
        correct = [sum(any(norm(a) == norm(r) for r in refs) for a in answers)
                   for answers, refs in zip(samples, references)]
        stats = {
            f"pass@{k}": np.column_stack([[pass_at_k(len(s), c, k) for s, c in zip(samples, correct)],
                                          np.ones(len(samples))])
            for k in self.ks
        }
        return self.results(stats)

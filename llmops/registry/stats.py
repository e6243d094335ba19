"""Decision statistics of the promotion gates, as pure functions over paired bootstrap deltas.

The gates never import the evaluation harness: their caller injects a comparison
function that returns, per metric, the observed candidate-minus-baseline delta and the
paired bootstrap replicates of that delta (`llmops.eval.api.bootstrap_compare`). From
those this module decides, with the metric's direction folded in ("change" > 0 is better):

- non-inferiority (``no_regression``): H0 change <= -margin vs H1 change > -margin;
  p = (1 + #{replicates <= -margin}) / (B + 1) (the bootstrap test that inverts the
  percentile interval); passes when p < alpha, i.e. the one-sided (1 - alpha) lower
  bound lies above -margin. Several metrics must *all* pass (an intersection-union test:
  no multiplicity correction is needed, Berger 1982).
- superiority (``better``): H0 change <= min_delta; p from the replicates the same way;
  p-values across metrics are Holm-adjusted (family-wise error <= alpha).

Every result records the test, the estimate, the interval, the p-value and alpha.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class TestResult:
    metric: str
    test: str
    estimate: float  # observed change (sign-adjusted so that positive is better)
    interval: tuple[float, float]  # percentile interval of the change at `confidence`
    confidence: float
    p_value: float
    alpha: float
    threshold: float  # -margin (non-inferiority) or min_delta (superiority)
    n_resamples: int
    p_adjusted: float | None = None
    passed: bool = False

    def to_dict(self) -> dict:
        d = asdict(self)
        d["interval"] = list(self.interval)
        return d


def _replicates(deltas: Sequence[float], sign: float) -> np.ndarray:
    arr = np.asarray(deltas, dtype=float) * sign
    arr = arr[np.isfinite(arr)]
    if arr.size < 100:
        raise ValueError(f"need at least 100 finite bootstrap replicates of the delta, got {arr.size}")
    return arr


def _p_at_or_below(arr: np.ndarray, threshold: float) -> float:
    return float((1 + int((arr <= threshold + 1e-12).sum())) / (arr.size + 1))


def noninferiority(metric: str, delta: float, deltas: Sequence[float], margin: float, alpha: float,
                   higher_is_better: bool = True) -> TestResult:
    """Is the candidate no worse than the baseline by more than `margin`?"""
    sign = 1.0 if higher_is_better else -1.0
    arr = _replicates(deltas, sign)
    p = _p_at_or_below(arr, -margin)
    low, high = np.quantile(arr, [alpha, 1 - alpha])
    return TestResult(metric, "non-inferiority (paired bootstrap)", sign * float(delta), (float(low), float(high)),
                      1 - 2 * alpha, p, alpha, -margin, int(arr.size), passed=p < alpha)


def superiority(metric: str, delta: float, deltas: Sequence[float], min_delta: float, alpha: float,
                higher_is_better: bool = True) -> TestResult:
    """Is the candidate better than the baseline by more than `min_delta`? (p not yet adjusted)"""
    sign = 1.0 if higher_is_better else -1.0
    arr = _replicates(deltas, sign)
    p = _p_at_or_below(arr, min_delta)
    low, high = np.quantile(arr, [alpha, 1 - alpha])
    return TestResult(metric, "superiority (paired bootstrap)", sign * float(delta), (float(low), float(high)),
                      1 - 2 * alpha, p, alpha, min_delta, int(arr.size))


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values (monotone, capped at 1), in the input order."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [0.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted

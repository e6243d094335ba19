"""Confidence intervals and paired significance tests over sufficient statistics.

All functions take per-sample statistics matrices (n, k) and a ``reduce`` that maps
column sums to a corpus score (see `llmops.eval.metrics.base`). Resampling rows of the
statistics — not per-sample scores — is what makes the tests valid for corpus metrics
such as BLEU, chrF, TER and perplexity (Koehn 2004; Riezler & Maxwell 2005). Binary
per-sample outcomes (exact match, accuracy) get McNemar's exact test instead. Every paired
test also reports a paired-bootstrap percentile interval of the delta, and `holm` corrects
the p-values of several metrics compared at once (Holm 1979, step-down).

Every function is deterministic given its ``seed``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np

Reduce = Callable[[np.ndarray], float]


@dataclass(frozen=True)
class PairedResult:
    """Outcome of comparing a candidate system to a baseline on the same samples."""

    test: str
    baseline: float
    candidate: float
    delta: float  # candidate - baseline
    p_value: float
    n: int
    detail: dict

    def as_dict(self) -> dict:
        return asdict(self)


def _resample_counts(n: int, n_resamples: int, seed: int) -> np.ndarray:
    """(n_resamples, n) matrix: how often each sample is drawn in each bootstrap resample."""
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(n_resamples, n))
    counts = np.zeros((n_resamples, n), dtype=np.int64)
    np.add.at(counts, (np.arange(n_resamples)[:, None], idx), 1)
    return counts


def _weighted_sums(weights: np.ndarray, stats: np.ndarray) -> np.ndarray:
    """weights @ stats, exact for integer statistics."""
    if np.issubdtype(stats.dtype, np.integer):
        return weights.astype(np.int64) @ stats
    return weights.astype(np.float64) @ stats


def bootstrap_ci(
    stats: np.ndarray, reduce: Reduce, n_resamples: int = 1000, confidence: float = 0.95, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap interval of ``reduce(stats.sum(0))`` (resampling samples)."""
    stats = np.asarray(stats)
    if len(stats) == 0:
        return float("nan"), float("nan")
    sums = _weighted_sums(_resample_counts(len(stats), n_resamples, seed), stats)
    scores = np.array([reduce(row) for row in sums], dtype=float)
    alpha = (1 - confidence) / 2
    low, high = np.nanquantile(scores, [alpha, 1 - alpha])
    return float(low), float(high)


def _check_paired(a: np.ndarray, b: np.ndarray) -> None:
    if a.shape != b.shape:
        raise ValueError(f"paired test needs statistics of the same samples: shapes {a.shape} and {b.shape}")
    if len(a) == 0:
        raise ValueError("paired test needs at least one sample")


def paired_bootstrap(
    baseline: np.ndarray, candidate: np.ndarray, reduce: Reduce, n_resamples: int = 1000, seed: int = 0
) -> PairedResult:
    """Paired bootstrap test (Koehn 2004), two-sided, with the null distribution obtained by
    centring the resampled deltas on their mean.

    Both systems are scored on the same resamples; the p-value is the share of centred
    resampled deltas at least as far from zero as the observed delta. This is not
    sacrebleu's ``--paired-bs`` p-value (which compares each resample's delta with the
    observed one differently); the two agree in direction, not digit for digit.
    """
    a, b = np.asarray(baseline), np.asarray(candidate)
    _check_paired(a, b)
    score_a, score_b = reduce(a.sum(0)), reduce(b.sum(0))
    observed = score_b - score_a
    counts = _resample_counts(len(a), n_resamples, seed)
    sums_a, sums_b = _weighted_sums(counts, a), _weighted_sums(counts, b)
    deltas = np.array([reduce(sb) - reduce(sa) for sa, sb in zip(sums_a, sums_b)])
    extreme = np.abs(deltas - deltas.mean()) >= abs(observed) - 1e-12
    p = (1 + int(extreme.sum())) / (n_resamples + 1)
    low, high = np.quantile(deltas, [0.025, 0.975])
    return PairedResult(
        "paired_bootstrap", score_a, score_b, observed, min(1.0, p), len(a),
        {"n_resamples": n_resamples, "seed": seed, "delta_ci95": [float(low), float(high)]},
    )


def bootstrap_delta_replicates(
    baseline: np.ndarray, candidate: np.ndarray, reduce: Reduce, n_resamples: int = 2000, seed: int = 0
) -> tuple[float, float, np.ndarray]:
    """(baseline score, candidate score, paired bootstrap replicates of candidate - baseline).

    The replicates are what a decision needs beyond a p-value for "no difference":
    non-inferiority and superiority tests against any threshold (`llmops.registry.stats`).
    """
    a, b = np.asarray(baseline), np.asarray(candidate)
    _check_paired(a, b)
    counts = _resample_counts(len(a), n_resamples, seed)
    sums_a, sums_b = _weighted_sums(counts, a), _weighted_sums(counts, b)
    deltas = np.array([reduce(sb) - reduce(sa) for sa, sb in zip(sums_a, sums_b)], dtype=float)
    return float(reduce(a.sum(0))), float(reduce(b.sum(0))), deltas


def approximate_randomization(
    baseline: np.ndarray, candidate: np.ndarray, reduce: Reduce, n_trials: int = 1000, seed: int = 0
) -> PairedResult:
    """Approximate randomisation test (Riezler & Maxwell 2005).

    Under the null hypothesis the two systems' outputs are exchangeable per sample, so
    each trial swaps each sample's statistics with probability 1/2 and recomputes
    |delta|; p is the share of trials at least as extreme as observed.
    """
    a, b = np.asarray(baseline), np.asarray(candidate)
    _check_paired(a, b)
    score_a, score_b = reduce(a.sum(0)), reduce(b.sum(0))
    observed = score_b - score_a
    rng = np.random.default_rng(seed)
    swaps = rng.integers(0, 2, size=(n_trials, len(a)))
    diff = b - a
    moved = _weighted_sums(swaps, diff)
    total_a, total_b = a.sum(0), b.sum(0)
    deltas = np.array([reduce(total_b - m) - reduce(total_a + m) for m in moved])
    extreme = np.abs(deltas) >= abs(observed) - 1e-12
    p = (1 + int(extreme.sum())) / (n_trials + 1)
    return PairedResult(
        "approximate_randomization", score_a, score_b, observed, min(1.0, p), len(a),
        {"n_trials": n_trials, "seed": seed},
    )


def mcnemar(baseline_correct: np.ndarray, candidate_correct: np.ndarray) -> PairedResult:
    """McNemar's exact test on paired binary outcomes (binomial test on discordant pairs)."""
    from scipy.stats import binomtest

    a = np.asarray(baseline_correct, dtype=bool)
    b = np.asarray(candidate_correct, dtype=bool)
    _check_paired(a, b)
    only_a, only_b = int((a & ~b).sum()), int((~a & b).sum())
    discordant = only_a + only_b
    p = 1.0 if discordant == 0 else float(binomtest(min(only_a, only_b), discordant, 0.5).pvalue)
    return PairedResult(
        "mcnemar", float(a.mean()), float(b.mean()), float(b.mean() - a.mean()), min(1.0, p), len(a),
        {"baseline_only_correct": only_a, "candidate_only_correct": only_b},
    )


def delta_interval(
    baseline: np.ndarray, candidate: np.ndarray, reduce: Reduce, n_resamples: int = 1000, confidence: float = 0.95,
    seed: int = 0,
) -> tuple[float, float]:
    """Paired percentile-bootstrap interval of ``score(candidate) - score(baseline)``."""
    a, b = np.asarray(baseline), np.asarray(candidate)
    _check_paired(a, b)
    counts = _resample_counts(len(a), n_resamples, seed)
    deltas = np.array([reduce(sb) - reduce(sa) for sa, sb in zip(_weighted_sums(counts, a), _weighted_sums(counts, b))])
    alpha = (1 - confidence) / 2
    low, high = np.nanquantile(deltas, [alpha, 1 - alpha])
    return float(low), float(high)


def holm(p_values: dict[str, float]) -> dict[str, float]:
    """Holm–Bonferroni adjusted p-values (family-wise error control over all entries):
    the k-th smallest p is multiplied by (m - k + 1), kept monotone, capped at 1."""
    order = sorted(p_values, key=lambda k: p_values[k])
    m, running, out = len(order), 0.0, {}
    for rank, name in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[name]))
        out[name] = running
    return out


def direction(delta: float, p_adjusted: float, higher_is_better: bool, alpha: float = 0.05) -> str:
    """"better", "worse" or "no difference" (at level `alpha`, after correction)."""
    if p_adjusted >= alpha or delta == 0:
        return "no difference"
    return "better" if (delta > 0) == higher_is_better else "worse"


def paired_test(
    baseline: np.ndarray, candidate: np.ndarray, reduce: Reduce, binary: bool, method: str = "bootstrap",
    n_resamples: int = 1000, seed: int = 0,
) -> PairedResult:
    """McNemar for binary outcomes; otherwise paired bootstrap or approximate randomisation.
    Every result carries ``detail["delta_ci95"]``, a paired bootstrap interval of the delta."""
    if binary:
        result = mcnemar(np.asarray(baseline)[:, 0], np.asarray(candidate)[:, 0])
        # McNemar reports the raw means; re-express with the metric's own reduction.
        result = PairedResult(
            result.test, reduce(np.asarray(baseline).sum(0)), reduce(np.asarray(candidate).sum(0)),
            reduce(np.asarray(candidate).sum(0)) - reduce(np.asarray(baseline).sum(0)), result.p_value, result.n,
            result.detail,
        )
    elif method == "bootstrap":
        result = paired_bootstrap(baseline, candidate, reduce, n_resamples, seed)
    elif method in {"randomization", "ar"}:
        result = approximate_randomization(baseline, candidate, reduce, n_resamples, seed)
    else:
        raise ValueError(f"unknown paired test `{method}` (bootstrap, randomization)")
    if "delta_ci95" not in result.detail:
        result.detail["delta_ci95"] = list(delta_interval(baseline, candidate, reduce, n_resamples, seed=seed))
    return result

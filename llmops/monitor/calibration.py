"""Bootstrap null distributions for drift statistics, resampling whole prompts (vectorised).

Why: tokens inside one prompt are not independent, so a chi-square test over pooled
tokens (or any fixed threshold) cries wolf on real text. Here a statistic's threshold is
the quantile of its distribution when reference and current window are both drawn from
the reference: each bootstrap replicate draws multinomial *prompt* weights for a
reference of the reference's size and for a window of ``n`` prompts, so within-prompt
correlation, the reference's own sampling noise and the window size are all accounted for.

Every feature is a per-prompt representation (a value, a token-count row, an embedding
row), so one weight matrix ``W`` (replicates × prompts) gives every feature's bootstrap
statistic with one matrix product or one weighted histogram — no Python loop over
replicates. The features share the same resampled prompts, so the family-wise false-alarm
rate is calibrated jointly (min-p over features), not by Bonferroni.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_EPS = 1e-4
_LN2 = float(np.log(2.0))


# --- statistics, vectorised over rows -----------------------------------------------------------------------------
def psi_rows(ref: np.ndarray, cur: np.ndarray) -> np.ndarray:
    """Population stability index of each row pair (proportions, clipped away from 0)."""
    r = np.clip(ref, _EPS, None)
    c = np.clip(cur, _EPS, None)
    return np.sum((c - r) * np.log(c / r), axis=-1)


def js_rows(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Jensen-Shannon distance (base 2, in [0, 1]) of each row pair of proportions."""
    m = 0.5 * (p + q)
    with np.errstate(divide="ignore", invalid="ignore"):
        kl_p = np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0) / np.where(m > 0, m, 1.0)), 0.0)
        kl_q = np.where(q > 0, q * np.log(np.where(q > 0, q, 1.0) / np.where(m > 0, m, 1.0)), 0.0)
    div = 0.5 * (kl_p.sum(axis=-1) + kl_q.sum(axis=-1)) / _LN2
    return np.sqrt(np.clip(div, 0.0, None))


def w1_rows(support: np.ndarray, cdf_a: np.ndarray, cdf_b: np.ndarray, scale: float) -> np.ndarray:
    """1-Wasserstein distance between CDFs on a sorted support, divided by `scale` (reference std)."""
    gaps = np.diff(support)
    return np.sum(np.abs(cdf_a[..., :-1] - cdf_b[..., :-1]) * gaps, axis=-1) / scale


def weighted_hist(groups: np.ndarray, weights: np.ndarray, n_groups: int) -> np.ndarray:
    """Row-wise weighted counts: out[b, g] = sum of weights[b, i] over prompts i with groups[i] == g."""
    rows = weights.shape[0]
    flat = (np.arange(rows)[:, None] * n_groups + groups[None, :]).ravel()
    return np.bincount(flat, weights=weights.ravel(), minlength=rows * n_groups).reshape(rows, n_groups)


def prompt_weights(rng: np.random.Generator, n_prompts: int, draws: int, replicates: int) -> np.ndarray:
    """Multinomial counts: how often each reference prompt is drawn into each of `replicates` samples of `draws`."""
    if draws <= 4 * n_prompts:  # index draws + one bincount: O(replicates * (draws + n_prompts))
        return _row_counts(rng.integers(0, n_prompts, size=(replicates, draws)), n_prompts)
    return rng.multinomial(draws, np.full(n_prompts, 1.0 / n_prompts), size=replicates).astype(float)


def _row_counts(idx: np.ndarray, n_prompts: int) -> np.ndarray:
    rows = idx.shape[0]
    flat = (np.arange(rows)[:, None] * n_prompts + idx).ravel()
    return np.bincount(flat, minlength=rows * n_prompts).reshape(rows, n_prompts).astype(float)


# --- features ----------------------------------------------------------------------------------------------------
@dataclass
class NumericFeature:
    """One number per prompt (length, OOV rate). Statistic: normalised W1 (small n) or PSI over fixed bins (large n)."""

    values: np.ndarray
    bins: list[float]
    scale: float
    subset: np.ndarray | None = None  # prompts that carry this feature (own resampling); None: all

    def __post_init__(self) -> None:
        self.support, self.groups = np.unique(self.values, return_inverse=True)
        self.bin_idx = np.searchsorted(np.asarray(self.bins, float), self.values, side="left")
        self.n_bins = len(self.bins) + 1

    def stats(self, w_ref: np.ndarray, w_cur: np.ndarray, method: str) -> np.ndarray:
        if method == "psi":
            hr = weighted_hist(self.bin_idx, w_ref, self.n_bins)
            hc = weighted_hist(self.bin_idx, w_cur, self.n_bins)
            return psi_rows(hr / hr.sum(1, keepdims=True), hc / hc.sum(1, keepdims=True))
        hr = weighted_hist(self.groups, w_ref, len(self.support)).cumsum(1)
        hc = weighted_hist(self.groups, w_cur, len(self.support)).cumsum(1)
        return w1_rows(self.support, hr / hr[:, -1:], hc / hc[:, -1:], self.scale)


@dataclass
class CountFeature:
    """A row of category proportions per prompt (tokens over the reference's top-K + other).

    The distribution compared is the mean of per-prompt proportions: every prompt weighs the
    same, so one very long prompt cannot swing it. Statistic: Jensen-Shannon distance.
    """

    props: np.ndarray  # prompts × categories, rows sum to 1 (0 for an empty prompt)
    subset: np.ndarray | None = None

    def stats(self, w_ref: np.ndarray, w_cur: np.ndarray, method: str) -> np.ndarray:
        cr, cc = w_ref @ self.props, w_cur @ self.props
        return js_rows(cr / np.clip(cr.sum(1, keepdims=True), 1e-12, None),
                       cc / np.clip(cc.sum(1, keepdims=True), 1e-12, None))


@dataclass
class VectorFeature:
    """A vector per prompt (mean-pooled hidden states). Statistic: mean squared standardised shift of the mean."""

    vectors: np.ndarray  # prompts × dims
    sd: np.ndarray
    subset: np.ndarray | None = None

    def stats(self, w_ref: np.ndarray, w_cur: np.ndarray, method: str) -> np.ndarray:
        mr = (w_ref @ self.vectors) / w_ref.sum(1, keepdims=True)
        mc = (w_cur @ self.vectors) / w_cur.sum(1, keepdims=True)
        return np.mean(((mc - mr) / self.sd) ** 2, axis=1)


def mean_shift(ref_mean: np.ndarray, sd: np.ndarray, cur: np.ndarray) -> float:
    """The VectorFeature statistic for a real window against the reference mean."""
    return float(np.mean(((cur.mean(0) - ref_mean) / sd) ** 2))


# --- joint calibration -------------------------------------------------------------------------------------------
def _min_p_thresholds(null: np.ndarray, names: list[str], alpha: float) -> tuple[dict[str, float], float]:
    """Thresholds so that P(any feature exceeds its own) ~= alpha under the null (min-p, Westfall-Young)."""
    replicates = null.shape[0]
    pvals = np.empty_like(null)
    for j in range(null.shape[1]):  # a loop over the 2-4 features, never over replicates
        asc = np.sort(null[:, j])
        pvals[:, j] = (replicates - np.searchsorted(asc, null[:, j], side="left")) / replicates  # P(null >= s)
    level = max(float(np.quantile(pvals.min(axis=1), alpha, method="lower")), 1.0 / replicates)
    return {k: float(np.quantile(null[:, j], 1.0 - level, method="higher")) for j, k in enumerate(names)}, level


def calibrate(features: dict[str, object], regimes: dict[str, dict[str, str]], n_ref: int, n_window: int,
              alpha: float, replicates: int, rng: np.random.Generator, w_ref: np.ndarray | None = None,
              levels: tuple[float, ...] = (0.5, 0.9, 0.95, 0.99)) -> dict[str, object]:
    """Null thresholds at window size `n_window` for each regime (regime -> {feature: method}).

    One set of resampled prompts serves every feature and method, so each regime's thresholds are
    calibrated jointly over its features: the family-wise false-alarm rate is ~alpha.
    """
    if w_ref is None:
        w_ref = prompt_weights(rng, n_ref, n_ref, replicates)
    w_cur = prompt_weights(rng, n_ref, n_window, replicates)
    own: dict[str, tuple[np.ndarray, np.ndarray]] = {}  # features carried by a subset of the prompts
    for k, feat in features.items():
        sub = getattr(feat, "subset", None)
        if sub is not None:
            own[k] = (prompt_weights(rng, len(sub), len(sub), replicates),
                      prompt_weights(rng, len(sub), n_window, replicates))
    cache: dict[tuple[str, str], np.ndarray] = {}
    out: dict[str, object] = {"n": int(n_window), "replicates": replicates}
    for regime, methods in regimes.items():
        names = list(methods)
        cols = []
        for k in names:
            key = (k, methods[k])
            if key not in cache:
                wr, wc = own.get(k, (w_ref, w_cur))
                cache[key] = features[k].stats(wr, wc, methods[k])
            cols.append(cache[key])
        null = np.column_stack(cols)
        thresholds, level = _min_p_thresholds(null, names, alpha)
        out[regime] = {"methods": methods, "thresholds": thresholds, "family_level": level,
                       "quantiles": {k: {str(q): float(np.quantile(null[:, j], q)) for q in levels}
                                     for j, k in enumerate(names)}}
    return out


def threshold_at(calibration: list[dict[str, object]], regime: str, feature: str, n: int) -> float | None:
    """A feature's threshold for a window of `n` prompts from thresholds calibrated at a grid of sizes.

    Exact at a calibrated size; between two sizes, linear in log(n) (the null quantile falls convexly
    in n, so the chord lies above it: conservative); above the largest size, the largest size's
    threshold (conservative); below the smallest, None: no calibrated decision is possible.
    """
    pts = sorted((int(c["n"]), float(c[regime]["thresholds"][feature])) for c in calibration
                 if regime in c and feature in c[regime]["thresholds"])
    if not pts or n < pts[0][0]:
        return None
    for (n0, t0), (n1, t1) in zip(pts, pts[1:]):
        if n0 <= n <= n1:
            if n == n0:
                return t0
            frac = (np.log(n) - np.log(n0)) / (np.log(n1) - np.log(n0))
            return float(t0 + frac * (t1 - t0))
    return pts[-1][1]

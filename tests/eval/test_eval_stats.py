"""Bootstrap intervals and paired tests: reproducible, p ≈ 1 for identical systems,
p < 0.05 for a clearly better one, on corpus (BLEU) and binary (McNemar) metrics."""

from __future__ import annotations

import numpy as np
import pytest

from eval_corpora import random_corpus
from llmops.eval.metrics import build_metric
from llmops.eval.stats import approximate_randomization, bootstrap_ci, mcnemar, paired_bootstrap, paired_test


def _bleu_stats(hyps, refs):
    metric = build_metric("bleu")
    res = metric.compute(hyps, refs)["bleu"]
    return res, (lambda s: metric.reduce("bleu", s))


def test_bootstrap_ci_reproducible_and_brackets_score() -> None:
    hyps, refs = random_corpus(200, seed=1)
    res, reduce = _bleu_stats(hyps, refs)
    a = bootstrap_ci(res.stats, reduce, 300, seed=7)
    b = bootstrap_ci(res.stats, reduce, 300, seed=7)
    c = bootstrap_ci(res.stats, reduce, 300, seed=8)
    assert a == b
    assert a != c
    assert a[0] < res.score < a[1]


def test_bootstrap_ci_of_a_mean_matches_normal_approximation() -> None:
    rng = np.random.default_rng(0)
    values = rng.random(2000)
    stats = np.column_stack([values, np.ones_like(values)])
    low, high = bootstrap_ci(stats, lambda s: s[0] / s[1], 2000, seed=0)
    half = 1.96 * values.std(ddof=1) / np.sqrt(len(values))
    assert high - low == pytest.approx(2 * half, rel=0.1)


@pytest.mark.parametrize("test", [paired_bootstrap, approximate_randomization])
def test_identical_systems_give_p_one(test) -> None:
    hyps, refs = random_corpus(150, seed=2)
    res, reduce = _bleu_stats(hyps, refs)
    out = test(res.stats, res.stats.copy(), reduce, 500, seed=0)
    assert out.delta == 0
    assert out.p_value == pytest.approx(1.0)


@pytest.mark.parametrize("test", [paired_bootstrap, approximate_randomization])
def test_clearly_better_system_is_significant(test) -> None:
    hyps, refs = random_corpus(150, seed=4)
    base, reduce = _bleu_stats(hyps, refs)
    better_hyps = [r[0] if i % 2 == 0 else h for i, (h, r) in enumerate(zip(hyps, refs))]
    cand, _ = _bleu_stats(better_hyps, refs)
    out = test(base.stats, cand.stats, reduce, 500, seed=0)
    assert out.delta > 10
    assert out.p_value < 0.05
    # reproducible with the seed
    assert test(base.stats, cand.stats, reduce, 500, seed=0).p_value == out.p_value


def test_slightly_noisy_equal_systems_are_not_significant() -> None:
    hyps, refs = random_corpus(200, seed=5)
    other, _ = random_corpus(200, seed=6)
    base, reduce = _bleu_stats(hyps, refs)
    swapped = [o if i % 20 == 0 else h for i, (h, o) in enumerate(zip(hyps, other))]
    cand, _ = _bleu_stats(swapped, refs)
    assert paired_bootstrap(base.stats, cand.stats, reduce, 500).p_value > 0.05


def test_mcnemar() -> None:
    a = np.array([1, 0, 1, 1, 0, 1, 0, 1] * 10, dtype=bool)
    assert mcnemar(a, a.copy()).p_value == 1.0
    b = np.ones_like(a)
    res = mcnemar(a, b)  # 30 samples only the candidate gets right, none the other way
    assert res.detail == {"baseline_only_correct": 0, "candidate_only_correct": 30}
    assert res.p_value == pytest.approx(2 * 0.5**30)
    # small discordant counts: not significant
    c = a.copy()
    c[1] = True
    assert mcnemar(a, c).p_value == 1.0


def test_paired_test_uses_mcnemar_for_binary_metrics() -> None:
    metric = build_metric("exact_match")
    refs = [[str(i)] for i in range(40)]
    base = metric.compute([str(i) if i < 10 else "x" for i in range(40)], refs)["exact_match"]
    cand = metric.compute([str(i) for i in range(40)], refs)["exact_match"]
    res = paired_test(base.stats, cand.stats, lambda s: metric.reduce("exact_match", s), binary=True)
    assert res.test == "mcnemar"
    assert res.delta == pytest.approx(0.75)
    assert res.p_value < 1e-6


def test_paired_shapes_must_match() -> None:
    with pytest.raises(ValueError, match="same samples"):
        paired_bootstrap(np.ones((3, 2)), np.ones((4, 2)), lambda s: float(s[0]))

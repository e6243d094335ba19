"""Token losses against hand-computed values."""

from __future__ import annotations

import math

import pytest
import torch

from llmops.train.losses import (
    IGNORE_INDEX,
    align_vocab,
    causal_lm_loss_sum,
    distillation_loss_sum,
    token_divergence,
)


def _kl(p: list[float], q: list[float]) -> float:
    return sum(pi * math.log(pi / qi) for pi, qi in zip(p, q) if pi > 0)


def _softmax(x: list[float], t: float = 1.0) -> list[float]:
    e = [math.exp(v / t) for v in x]
    return [v / sum(e) for v in e]


S, T = [2.0, 0.5, -1.0], [0.0, 1.5, 0.3]  # one position of student / teacher logits


def _logits(values: list[float]) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float64).view(1, 1, 3)


def test_kl_of_a_distribution_with_itself_is_zero():
    logits = torch.randn(2, 5, 11)
    for kind in ("forward_kl", "reverse_kl", "jsd"):
        assert torch.allclose(token_divergence(logits, logits.clone(), kind, 2.0), torch.zeros(2, 5), atol=1e-6)


@pytest.mark.parametrize("temperature", [1.0, 2.0])
def test_divergences_match_hand_computation(temperature):
    p_s, p_t = _softmax(S, temperature), _softmax(T, temperature)
    fwd = token_divergence(_logits(S), _logits(T), "forward_kl", temperature).item()
    rev = token_divergence(_logits(S), _logits(T), "reverse_kl", temperature).item()
    assert fwd == pytest.approx(_kl(p_t, p_s), rel=1e-6)
    assert rev == pytest.approx(_kl(p_s, p_t), rel=1e-6)
    assert fwd != pytest.approx(rev, rel=1e-3)  # the two directions really differ here
    beta = 0.3
    m = [beta * t + (1 - beta) * s for s, t in zip(p_s, p_t)]
    jsd = token_divergence(_logits(S), _logits(T), "jsd", temperature, beta=beta).item()
    assert jsd == pytest.approx(beta * _kl(p_t, m) + (1 - beta) * _kl(p_s, m), rel=1e-6)
    # the end points of the generalised JSD are the two KLs
    assert token_divergence(_logits(S), _logits(T), "jsd", temperature, beta=0.0).item() == pytest.approx(fwd)
    assert token_divergence(_logits(S), _logits(T), "jsd", temperature, beta=1.0).item() == pytest.approx(rev)


def test_distillation_applies_t_squared_and_alpha():
    # two positions; labels shift by one, so the second position's logits are unused
    student = torch.tensor([[S, [0.0, 0.0, 0.0]]], dtype=torch.float64)
    teacher = torch.tensor([[T, [0.0, 0.0, 0.0]]], dtype=torch.float64)
    labels = torch.tensor([[IGNORE_INDEX, 1]])
    t = 3.0
    kd_hand = t**2 * _kl(_softmax(T, t), _softmax(S, t))
    ce_hand = -math.log(_softmax(S)[1])
    for alpha in (0.0, 0.25, 1.0):
        loss, n, parts = distillation_loss_sum(student, teacher, labels, "forward_kl", temperature=t, alpha=alpha)
        assert n == 1
        assert parts["kd"].item() == pytest.approx(kd_hand, rel=1e-6)
        assert parts["ce"].item() == pytest.approx(ce_hand, rel=1e-6)
        assert loss.item() == pytest.approx(alpha * kd_hand + (1 - alpha) * ce_hand, rel=1e-6)


def test_ignored_positions_are_excluded_and_all_masked_gives_zero():
    torch.manual_seed(0)
    student, teacher = torch.randn(2, 6, 7, requires_grad=True), torch.randn(2, 6, 7)
    labels = torch.randint(0, 7, (2, 6))
    labels[0, 2:] = IGNORE_INDEX
    labels[1, :4] = IGNORE_INDEX
    loss, n, parts = distillation_loss_sum(student, teacher, labels, "jsd", temperature=2.0, alpha=0.7)
    mask = labels[:, 1:] != IGNORE_INDEX
    per_pos = token_divergence(student[:, :-1], teacher[:, :-1], "jsd", 2.0)
    assert n == int(mask.sum()) == 3
    assert parts["kd"].item() == pytest.approx(4.0 * per_pos[mask].sum().item(), rel=1e-6)
    # changing logits at an ignored position changes nothing
    student2 = student.detach().clone()
    student2[0, 3] += 5.0
    loss2, _, _ = distillation_loss_sum(student2, teacher, labels, "jsd", temperature=2.0, alpha=0.7)
    assert loss2.item() == pytest.approx(loss.item(), rel=1e-6)

    all_masked = torch.full_like(labels, IGNORE_INDEX)
    for kind in ("forward_kl", "reverse_kl", "jsd"):
        loss0, n0, _ = distillation_loss_sum(student, teacher, all_masked, kind, temperature=2.0, alpha=0.5)
        assert n0 == 0 and loss0.item() == 0.0 and not torch.isnan(loss0)
        loss0.backward()
        assert not torch.isnan(student.grad).any()
        student.grad = None


def test_causal_lm_loss_is_a_sum_over_supervised_tokens():
    torch.manual_seed(1)
    logits, labels = torch.randn(1, 4, 5), torch.tensor([[IGNORE_INDEX, 3, IGNORE_INDEX, 1]])
    loss, n = causal_lm_loss_sum(logits, labels)
    logp = torch.log_softmax(logits, -1)
    assert n == 2
    assert loss.item() == pytest.approx(-(logp[0, 0, 3] + logp[0, 2, 1]).item(), rel=1e-6)


def test_vocab_padding_rows_are_sliced_and_a_real_mismatch_is_an_error():
    s, t = torch.randn(1, 2, 8), torch.randn(1, 2, 10)
    s2, t2 = align_vocab(s, t, vocab_size=8)
    assert s2.shape == t2.shape == (1, 2, 8)
    with pytest.raises(ValueError, match="teacher has 10 output rows"):
        align_vocab(torch.randn(1, 2, 12), t, vocab_size=12)


def test_generalised_jsd_matches_trl_when_installed():
    gkd_module = pytest.importorskip("trl.experimental.gkd.gkd_trainer")
    gkd = gkd_module.GKDTrainer.generalized_jsd_loss
    torch.manual_seed(2)
    s, t = torch.randn(2, 3, 9), torch.randn(2, 3, 9)
    for beta in (0.0, 0.1, 0.5, 0.9, 1.0):
        ours = token_divergence(s, t, "jsd", temperature=1.5, beta=beta).sum()
        theirs = gkd(s, t, beta=beta, temperature=1.5, reduction="sum")
        assert ours.item() == pytest.approx(theirs.item(), rel=1e-5)

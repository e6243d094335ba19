"""DPO-family, Bradley-Terry and RLOO maths against hand-computed values."""

from __future__ import annotations

import math

import pytest
import torch

from llmops.preference.losses import bradley_terry_loss, dpo_loss, rloo_advantages, rloo_policy_loss
from llmops.preference.logps import completion_logps


def _sig(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def test_sigmoid_dpo_matches_hand_computed():
    pc, pr = torch.tensor([-3.0, -5.0]), torch.tensor([-4.0, -2.0])
    rc, rr = torch.tensor([-3.5, -4.0]), torch.tensor([-3.0, -2.5])
    out = dpo_loss(pc, pr, rc, rr, loss_type="sigmoid", beta=0.5)
    # pair 0: h = (−3+3.5) − (−4+3) = 1.5 ; pair 1: h = (−5+4) − (−2+2.5) = −1.5
    expected = [-math.log(_sig(0.75)), -math.log(_sig(-0.75))]
    assert out.losses.tolist() == pytest.approx(expected, abs=1e-6)
    assert out.chosen_rewards.tolist() == pytest.approx([0.25, -0.5])
    assert out.rejected_rewards.tolist() == pytest.approx([-0.5, 0.25])
    assert out.accuracies.tolist() == [1.0, 0.0]
    assert out.margins.tolist() == pytest.approx([0.75, -0.75])


def test_cdpo_ipo_simpo_hand_computed():
    pc, pr, rc, rr = (torch.tensor([v]) for v in (-3.0, -4.0, -3.5, -3.0))
    h = 0.5 * 1.5
    cdpo = dpo_loss(pc, pr, rc, rr, loss_type="cdpo", beta=0.5, label_smoothing=0.1).losses.item()
    assert cdpo == pytest.approx(-0.9 * math.log(_sig(h)) - 0.1 * math.log(_sig(-h)), abs=1e-6)
    smoothed = dpo_loss(pc, pr, rc, rr, loss_type="sigmoid", beta=0.5, label_smoothing=0.1).losses.item()
    assert smoothed == pytest.approx(cdpo)  # label_smoothing is never ignored (TRL: sigmoid + smoothing = cDPO)

    lc, lr = torch.tensor([3]), torch.tensor([2])
    ipo = dpo_loss(pc, pr, rc, rr, loss_type="ipo", beta=0.5, chosen_lengths=lc, rejected_lengths=lr).losses.item()
    assert ipo == pytest.approx((0.5 / 3 - (-1.0) / 2 - 1 / (2 * 0.5)) ** 2, abs=1e-6)

    simpo = dpo_loss(
        pc, pr, None, None, loss_type="simpo", beta=2.0, simpo_gamma=0.5, chosen_lengths=lc, rejected_lengths=lr
    )
    assert simpo.losses.item() == pytest.approx(-math.log(_sig(2.0 * (-1.0 + 2.0) - 0.5)), abs=1e-6)
    with pytest.raises(ValueError, match="reference"):
        dpo_loss(pc, pr, None, None, loss_type="sigmoid")
    with pytest.raises(ValueError, match="lengths"):
        dpo_loss(pc, pr, rc, rr, loss_type="ipo")


@pytest.mark.parametrize("loss_type", ["sigmoid", "cdpo"])
def test_at_init_loss_is_log2_and_margin_zero(loss_type):
    logps = torch.tensor([-7.0, -1.25, -30.0])
    other = torch.tensor([-2.0, -9.5, -0.5])
    out = dpo_loss(logps, other, logps.clone(), other.clone(), loss_type=loss_type, beta=0.3, label_smoothing=0.2)
    assert out.losses.tolist() == pytest.approx([math.log(2)] * 3, abs=1e-7)
    assert out.margins.abs().max().item() == 0.0
    assert out.accuracies.sum().item() == 0.0  # ties count as wrong


def test_bradley_terry_margin_and_centering():
    rc, rr = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 2.0])
    plain = bradley_terry_loss(rc, rr)
    assert plain.tolist() == pytest.approx([-math.log(_sig(1.0)), -math.log(_sig(-2.0))], abs=1e-6)
    with_margin = bradley_terry_loss(rc, rr, margin=torch.tensor([0.5, 0.0]))
    assert with_margin[0].item() == pytest.approx(-math.log(_sig(0.5)), abs=1e-6)
    centered = bradley_terry_loss(rc, rr, center_rewards_coefficient=0.01)
    assert (centered - plain).tolist() == pytest.approx([0.01 * 1.0, 0.01 * 4.0], abs=1e-6)


def test_rloo_leave_one_out_baseline_and_kl():
    rewards = torch.tensor([[1.0, 2.0, 3.0], [0.0, 0.0, 6.0]])
    adv, kl = rloo_advantages(rewards)
    # sample 0 of prompt 0: 1 − mean(2, 3) = −1.5
    torch.testing.assert_close(adv, torch.tensor([[-1.5, 0.0, 1.5], [-3.0, -3.0, 6.0]]))
    assert adv.sum(dim=1).abs().max().item() < 1e-6  # LOO advantages of a prompt sum to zero
    logp = torch.tensor([-1.0, -2.0, -3.0, -1.0, -1.0, -1.0])
    ref = torch.tensor([-2.0, -2.0, -2.0, -1.0, -1.0, -1.0])
    adv_kl, kl = rloo_advantages(rewards, logp, ref, kl_coef=0.5)
    torch.testing.assert_close(kl, torch.tensor([[1.0, 0.0, -1.0], [0.0, 0.0, 0.0]]))
    total = rewards[0] - 0.5 * torch.tensor([1.0, 0.0, -1.0])  # [0.5, 2, 3.5]
    assert adv_kl[0].tolist() == pytest.approx([0.5 - 2.75, 2 - 2.0, 3.5 - 1.25])
    loss = rloo_policy_loss(adv_kl, logp)
    assert loss.shape == (6,) and loss[0].item() == pytest.approx(-(0.5 - 2.75) * -1.0)
    with pytest.raises(ValueError, match="k>=2"):
        rloo_advantages(torch.ones(3, 1))


def test_completion_logps_uses_shifted_mask_in_fp32():
    logits = torch.randn(2, 4, 5, dtype=torch.bfloat16)
    ids = torch.tensor([[1, 2, 3, 4], [0, 1, 2, 0]])
    mask = torch.tensor([[0, 0, 1, 1], [0, 1, 1, 0]])
    sums, counts = completion_logps(logits, ids, mask)
    ref = logits.float().log_softmax(-1)
    expected0 = ref[0, 1, 3] + ref[0, 2, 4]
    expected1 = ref[1, 0, 1] + ref[1, 1, 2]
    assert sums.dtype == torch.float32
    assert sums.tolist() == pytest.approx([expected0.item(), expected1.item()], abs=1e-6)
    assert counts.tolist() == [2, 2]


def test_rpo_alpha_zero_is_plain_dpo_and_positive_adds_chosen_nll():
    pc, pr = torch.tensor([-3.0, -6.0]), torch.tensor([-4.0, -2.0])
    rc, rr = torch.tensor([-3.5, -4.0]), torch.tensor([-3.0, -2.5])
    lc, lr = torch.tensor([3, 2]), torch.tensor([2, 4])
    for loss_type in ("sigmoid", "ipo", "simpo"):
        plain = dpo_loss(pc, pr, rc, rr, loss_type=loss_type, beta=0.5, chosen_lengths=lc, rejected_lengths=lr)
        zero = dpo_loss(pc, pr, rc, rr, loss_type=loss_type, beta=0.5, chosen_lengths=lc, rejected_lengths=lr,
                        rpo_alpha=0.0)
        assert torch.equal(zero.losses, plain.losses) and zero.chosen_nll is None
        rpo = dpo_loss(pc, pr, rc, rr, loss_type=loss_type, beta=0.5, chosen_lengths=lc, rejected_lengths=lr,
                       rpo_alpha=0.7)
        nll = [3.0 / 3, 6.0 / 2]  # −log π(chosen) per chosen token
        assert rpo.chosen_nll.tolist() == pytest.approx(nll)
        assert (rpo.losses - plain.losses).tolist() == pytest.approx([0.7 * x for x in nll], abs=1e-6)
        assert torch.equal(rpo.chosen_rewards, plain.chosen_rewards)  # the implicit rewards are DPO's


def test_rpo_gradient_raises_the_chosen_logp_even_when_dpo_is_saturated():
    pc = torch.tensor([-5.0], requires_grad=True)
    pr = torch.tensor([-500.0], requires_grad=True)  # the pair is already separated: DPO's gradient ~ 0
    args = (torch.tensor([-5.0]), torch.tensor([-5.0]))
    dpo_loss(pc, pr, *args, beta=0.1, chosen_lengths=torch.tensor([5]), rpo_alpha=1.0).losses.sum().backward()
    assert pc.grad.item() == pytest.approx(-1 / 5, abs=1e-6)


def test_rpo_needs_lengths_and_a_nonnegative_alpha():
    t = torch.tensor([-1.0])
    with pytest.raises(ValueError, match="chosen_lengths"):
        dpo_loss(t, t, t, t, rpo_alpha=0.5)
    with pytest.raises(ValueError, match=">= 0"):
        dpo_loss(t, t, t, t, rpo_alpha=-1.0)

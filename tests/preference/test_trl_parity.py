"""Our DPO losses equal TRL 1.16's on identical models and batches (within 1e-5).

TRL's DPO loss lives inside `DPOTrainer._compute_loss` (and SimPO/cDPO-style smoothing in
the experimental `CPOTrainer.cpo_loss`), so we call those methods unbound on a minimal
stand-in for the trainer state: TRL computes the log-probs itself with its fused LM head
on the same random Llama, and we compare the resulting loss with ours.
"""

from __future__ import annotations

import math
from collections import defaultdict
from types import SimpleNamespace

import pytest
import torch

from llmops.preference.logps import sequence_logps
from llmops.preference.losses import dpo_loss

from .helpers import tiny_llama, toy_pair_batch

trl = pytest.importorskip("trl")


def _trl_dpo_loss(policy, reference, batch, loss_type: str, beta: float) -> torch.Tensor:
    from trl.trainer.dpo_trainer import DPOTrainer
    from trl.trainer.utils import add_fused_lm_head

    for model in (policy, reference):
        add_fused_lm_head(model, outputs=("log_probs", "entropy", "mean_logits", "is_top1"))
    accel = SimpleNamespace(device=torch.device("cpu"), gather=lambda t: t, gather_for_metrics=lambda t: t)
    state = SimpleNamespace(
        model=policy,
        ref_model=reference,
        accelerator=accel,
        aux_loss_enabled=False,
        ld_alpha=None,
        precompute_ref_logps=False,
        f_divergence_type="reverse_kl",
        loss_types=[loss_type],
        loss_weights=[1.0],
        beta=beta,
        label_smoothing=0.0,
        use_weighting=False,
        _metrics={"train": defaultdict(list), "eval": defaultdict(list)},
        _total_train_tokens=0,
        _tp_size=1,
        args=SimpleNamespace(gradient_checkpointing_kwargs=None),
    )
    with torch.no_grad():
        return DPOTrainer._compute_loss(state, policy, dict(batch), return_outputs=False)


@pytest.mark.parametrize("loss_type", ["sigmoid", "ipo"])
def test_dpo_loss_matches_trl_on_a_real_model_batch(loss_type):
    batch = toy_pair_batch(n_pairs=3)
    policy, reference = tiny_llama(seed=0), tiny_llama(seed=1)
    with torch.no_grad():
        logps, counts = sequence_logps(policy, batch)
        ref_logps, _ = sequence_logps(reference, batch)
    pc, pr = logps.chunk(2)
    rc, rr = ref_logps.chunk(2)
    lc, lr = counts.chunk(2)
    ours = dpo_loss(pc, pr, rc, rr, loss_type=loss_type, beta=0.3, chosen_lengths=lc, rejected_lengths=lr)
    theirs = _trl_dpo_loss(policy, reference, batch, loss_type, beta=0.3)
    assert ours.losses.mean().item() == pytest.approx(theirs.item(), abs=1e-5)
    assert ours.losses.mean().item() > 0.01  # different models: a non-trivial loss


def _trl_cpo_loss(chosen, rejected, loss_type: str, beta: float, label_smoothing: float, gamma: float = 0.0):
    from trl.experimental.cpo.cpo_trainer import CPOTrainer

    state = SimpleNamespace(
        alpha=0.0,
        loss_type=loss_type,
        beta=beta,
        label_smoothing=label_smoothing,
        simpo_gamma=gamma,
        accelerator=SimpleNamespace(device=torch.device("cpu")),
    )
    losses, _, _ = CPOTrainer.cpo_loss(state, chosen, rejected)
    return losses


def test_cdpo_and_simpo_match_trl_formulas():
    g = torch.Generator().manual_seed(3)
    pc, pr, rc, rr = (-(torch.rand(5, generator=g) * 20) for _ in range(4))
    lc, lr = torch.tensor([3, 7, 1, 12, 5]), torch.tensor([9, 2, 4, 6, 5])
    # cDPO = TRL's label-smoothed sigmoid applied to the policy/reference log-ratios.
    ours = dpo_loss(pc, pr, rc, rr, loss_type="cdpo", beta=0.2, label_smoothing=0.15).losses
    theirs = _trl_cpo_loss(pc - rc, pr - rr, "sigmoid", beta=0.2, label_smoothing=0.15)
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=0)
    # SimPO: reference-free, on length-averaged log-probs (TRL: average_log_prob=True).
    ours = dpo_loss(
        pc, pr, None, None, loss_type="simpo", beta=2.0, simpo_gamma=0.5, chosen_lengths=lc, rejected_lengths=lr
    ).losses
    theirs = _trl_cpo_loss(pc / lc, pr / lr, "simpo", beta=2.0, label_smoothing=0.0, gamma=0.5)
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=0)


@pytest.mark.slow
def test_dpo_loss_matches_trl_on_a_builtin_model_batch():
    """Built-in model and tokenizer, pairs through our tokenisation and collation, reference perturbed."""
    from llmops.models.loading import load_causal_lm, load_tokenizer
    from llmops.preference.data import PairCollator, build_pair_examples

    tok = load_tokenizer("builtin:tiny")
    rows = [
        {"prompt": "Return the absolute value of a number.", "chosen": "Absolute value.", "rejected": "It opens files."},
        {"prompt": "Open a file and return a stream.", "chosen": "Open a file.", "rejected": "Sorts a list in place."},
        {"prompt": [{"role": "user", "content": "Join two paths."}],
         "chosen": [{"role": "assistant", "content": "Join paths."}],
         "rejected": [{"role": "assistant", "content": "Start a thread now please."}]},
    ]
    examples, _ = build_pair_examples(rows, tok, max_length=64)
    batch = PairCollator(tok.pad_token_id)(examples)
    policy, reference = load_causal_lm("builtin:tiny").eval(), load_causal_lm("builtin:tiny").eval()
    torch.manual_seed(0)
    with torch.no_grad():
        for p in reference.parameters():
            p.add_(torch.randn_like(p) * 0.02)
        logps, counts = sequence_logps(policy, batch)
        ref_logps, _ = sequence_logps(reference, batch)
    pc, pr = logps.chunk(2)
    rc, rr = ref_logps.chunk(2)
    ours = dpo_loss(pc, pr, rc, rr, loss_type="sigmoid", beta=0.1).losses.mean()
    theirs = _trl_dpo_loss(policy, reference, batch, "sigmoid", beta=0.1)
    assert ours.item() == pytest.approx(theirs.item(), abs=1e-5)
    assert abs(ours.item() - math.log(2)) > 1e-4  # the perturbed reference really differs

"""Preference losses on sequence log-probabilities and rewards, all computed in fp32.

Inputs are per-sequence *summed* completion log-probabilities (see `logps.py`) or
per-sequence reward-model scores, so the losses are independent of how a model is run
(one forward pass, precomputed reference, several processes). Every function returns
per-example values; the caller reduces, so the engine can normalise across an
accumulation window and all processes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F

DPOLossType = Literal["sigmoid", "ipo", "cdpo", "simpo"]


@dataclass
class DPOOutput:
    """Per-pair loss and the implicit rewards that explain it (detached, for logging)."""

    losses: torch.Tensor
    chosen_rewards: torch.Tensor
    rejected_rewards: torch.Tensor
    chosen_nll: torch.Tensor | None = None  # per-token NLL of each chosen completion (with rpo_alpha > 0)

    @property
    def margins(self) -> torch.Tensor:
        return self.chosen_rewards - self.rejected_rewards

    @property
    def accuracies(self) -> torch.Tensor:
        """1 where the chosen implicit reward is strictly higher (ties count as wrong)."""
        return (self.chosen_rewards > self.rejected_rewards).float()


def dpo_loss(
    policy_chosen_logps: torch.Tensor,
    policy_rejected_logps: torch.Tensor,
    ref_chosen_logps: torch.Tensor | None,
    ref_rejected_logps: torch.Tensor | None,
    *,
    loss_type: DPOLossType = "sigmoid",
    beta: float = 0.1,
    label_smoothing: float = 0.0,
    simpo_gamma: float = 0.5,
    chosen_lengths: torch.Tensor | None = None,
    rejected_lengths: torch.Tensor | None = None,
    rpo_alpha: float = 0.0,
) -> DPOOutput:
    """DPO-family loss per pair.

    - ``sigmoid``: ``-log σ(β h)`` with ``h = (π_c − ref_c) − (π_r − ref_r)`` (Rafailov et al. 2023).
    - ``cdpo``: conservative DPO, labels flipped with rate ε:
      ``−(1−ε) log σ(β h) − ε log σ(−β h)``; ``sigmoid`` with ``label_smoothing`` ε > 0
      is the same loss (as in TRL), never a silently ignored setting.
    - ``ipo``: ``(h̄ − 1/(2β))²`` with log-ratios averaged per completion token, as TRL and
      the IPO authors do, so β is comparable across completion lengths.
    - ``simpo``: reference-free, length-normalised: ``−log σ(β (π̄_c − π̄_r) − γ)``.

    `ipo` and `simpo` need the completion token counts; `simpo` ignores the reference.

    ``rpo_alpha`` > 0 adds ``α · NLL(chosen)`` per pair, the chosen completion's negative
    log-likelihood per token (RPO, Pang et al. 2024; TRL's ``rpo_alpha``): the policy must
    keep writing the preferred answers while it separates them from the rejected ones, which
    stops DPO from lowering both. It needs `chosen_lengths`. TRL averages the NLL over all
    chosen tokens of a batch; here it is averaged per completion, then over pairs like the
    rest of the loss.
    """
    if rpo_alpha < 0:
        raise ValueError(f"rpo_alpha must be >= 0, got {rpo_alpha}")
    out = _dpo_family(policy_chosen_logps, policy_rejected_logps, ref_chosen_logps, ref_rejected_logps,
                      loss_type=loss_type, beta=beta, label_smoothing=label_smoothing, simpo_gamma=simpo_gamma,
                      chosen_lengths=chosen_lengths, rejected_lengths=rejected_lengths)
    if rpo_alpha:
        if chosen_lengths is None:
            raise ValueError("rpo_alpha needs chosen_lengths (completion token counts)")
        nll = -policy_chosen_logps.float() / chosen_lengths.float().clamp(min=1)
        out = DPOOutput(out.losses + rpo_alpha * nll, out.chosen_rewards, out.rejected_rewards, nll.detach())
    return out


def _dpo_family(policy_chosen_logps, policy_rejected_logps, ref_chosen_logps, ref_rejected_logps, *,
                loss_type, beta, label_smoothing, simpo_gamma, chosen_lengths, rejected_lengths) -> DPOOutput:
    pc, pr = policy_chosen_logps.float(), policy_rejected_logps.float()
    if loss_type == "simpo":
        if chosen_lengths is None or rejected_lengths is None:
            raise ValueError("simpo needs chosen_lengths and rejected_lengths (completion token counts)")
        chosen_scores = pc / chosen_lengths.float().clamp(min=1)
        rejected_scores = pr / rejected_lengths.float().clamp(min=1)
        logits = beta * (chosen_scores - rejected_scores) - simpo_gamma
        losses = -(1 - label_smoothing) * F.logsigmoid(logits) - label_smoothing * F.logsigmoid(-logits)
        return DPOOutput(losses, (beta * chosen_scores).detach(), (beta * rejected_scores).detach())

    if ref_chosen_logps is None or ref_rejected_logps is None:
        raise ValueError(f"loss `{loss_type}` needs reference log-probs")
    chosen_logratios = pc - ref_chosen_logps.float()
    rejected_logratios = pr - ref_rejected_logps.float()
    if loss_type in ("sigmoid", "cdpo"):  # as TRL: sigmoid with label_smoothing > 0 *is* cDPO
        h = beta * (chosen_logratios - rejected_logratios)
        losses = -(1 - label_smoothing) * F.logsigmoid(h) - label_smoothing * F.logsigmoid(-h)
    elif loss_type == "ipo":
        if chosen_lengths is None or rejected_lengths is None:
            raise ValueError("ipo needs chosen_lengths and rejected_lengths (completion token counts)")
        h = chosen_logratios / chosen_lengths.float().clamp(min=1) - rejected_logratios / rejected_lengths.float().clamp(
            min=1
        )
        losses = (h - 1 / (2 * beta)) ** 2
    else:
        raise ValueError(f"unknown DPO loss `{loss_type}` (sigmoid, ipo, cdpo, simpo)")
    return DPOOutput(losses, (beta * chosen_logratios).detach(), (beta * rejected_logratios).detach())


def bradley_terry_loss(
    chosen_rewards: torch.Tensor,
    rejected_rewards: torch.Tensor,
    margin: torch.Tensor | None = None,
    center_rewards_coefficient: float | None = None,
) -> torch.Tensor:
    """Per-pair reward-model loss ``−log σ(r_c − r_r − m)``.

    The optional margin ``m`` asks for a larger gap where raters agreed more strongly
    (Llama 2). Reward centering adds ``c · (r_c + r_r)²`` so that scores stay near 0,
    which keeps them comparable across runs (Eisenstein et al. 2023).
    """
    rc, rr = chosen_rewards.float(), rejected_rewards.float()
    diff = rc - rr if margin is None else rc - rr - margin.float()
    losses = -F.logsigmoid(diff)
    if center_rewards_coefficient:
        losses = losses + center_rewards_coefficient * (rc + rr) ** 2
    return losses


def rloo_advantages(
    rewards: torch.Tensor,
    policy_logps: torch.Tensor | None = None,
    ref_logps: torch.Tensor | None = None,
    kl_coef: float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """RLOO advantages for rewards shaped ``[n_prompts, k]`` (k samples per prompt).

    The KL penalty is folded into the reward per sequence (``r − c · Σ_t (log π − log π_ref)``,
    the k1 estimator, as in Ahmadian et al. 2024 and TRL). Each sample's baseline is the
    mean of the *other* k−1 samples of its prompt, which keeps the gradient unbiased:
    ``A_i = R_i − (Σ_j R_j − R_i)/(k − 1)``. Returns (advantages, kl) with the input shape.
    """
    if rewards.dim() != 2 or rewards.shape[1] < 2:
        raise ValueError(f"rewards must be [n_prompts, k>=2], got shape {tuple(rewards.shape)}")
    total = rewards.float()
    kl = torch.zeros_like(total)
    if kl_coef and policy_logps is not None and ref_logps is not None:
        kl = (policy_logps.float() - ref_logps.float()).reshape(total.shape)
        total = total - kl_coef * kl
    k = total.shape[1]
    baseline = (total.sum(dim=1, keepdim=True) - total) / (k - 1)
    return (total - baseline).detach(), kl.detach()


def rloo_policy_loss(advantages: torch.Tensor, policy_logps: torch.Tensor) -> torch.Tensor:
    """Per-sample REINFORCE loss ``−A · log π(y|x)`` (advantages are constants)."""
    return -(advantages.detach().reshape(-1) * policy_logps.float().reshape(-1))

"""Token-level losses, all returned as sums over supervised positions (never means).

Returning sums lets the engine normalise by the number of supervised tokens across the
whole accumulation window and all processes (see `llmops.train.engine`); a per-batch
mean would over-weight short sequences.

Knowledge distillation follows Hinton et al. (2015) and, for the generalised
Jensen-Shannon divergence, Agarwal et al. (2024, "GKD"), with the same convention as
TRL's ``GKDTrainer.generalized_jsd_loss``: with ``β`` the teacher weight of the
mixture ``m = β·p_teacher + (1-β)·p_student``,
``JSD_β = β·KL(p_teacher‖m) + (1-β)·KL(p_student‖m)``; ``β = 0`` is defined as the
forward KL and ``β = 1`` as the reverse KL (the limits of the scaled divergence).
Divergences are computed on temperature-softened distributions and multiplied by
``T²`` so that their gradients keep the magnitude of the hard-label loss.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F

IGNORE_INDEX = -100
Divergence = Literal["forward_kl", "reverse_kl", "jsd"]


def shifted_targets(labels: torch.Tensor) -> torch.Tensor:
    """Targets aligned with every logits position: position t predicts token t+1.

    The labels are shifted (and padded with -100 at the end) instead of slicing the
    logits: slicing ``logits[:, :-1]`` would copy the largest tensor of the step.
    """
    return F.pad(labels, (0, 1), value=IGNORE_INDEX)[:, 1:]


def supervised_mask(labels: torch.Tensor) -> torch.Tensor:
    """Positions that carry a target (after the causal shift)."""
    return labels[:, 1:] != IGNORE_INDEX


def count_supervised_tokens(labels: torch.Tensor) -> int:
    """Number of positions `causal_lm_loss_sum` sums over."""
    return int(supervised_mask(labels).sum())


def causal_lm_loss_sum(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, int]:
    """Summed next-token cross-entropy over labels != -100, and their count.

    Computed in float32 whatever the autocast dtype, so bf16 logits do not lose the
    small differences between large log-probabilities.
    """
    targets = shifted_targets(labels)
    n_tokens = int((targets != IGNORE_INDEX).sum())
    loss = F.cross_entropy(
        logits.float().reshape(-1, logits.size(-1)),
        targets.reshape(-1),
        ignore_index=IGNORE_INDEX,
        reduction="sum",
    )
    return loss, n_tokens


def _kl(log_p: torch.Tensor, log_q: torch.Tensor) -> torch.Tensor:
    """KL(p‖q) summed over the last (vocabulary) axis; 0·log 0 counts as 0."""
    p = log_p.exp()
    return torch.where(p > 0, p * (log_p - log_q), torch.zeros_like(p)).sum(-1)


def token_divergence(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    kind: Divergence = "forward_kl",
    temperature: float = 1.0,
    beta: float = 0.5,
) -> torch.Tensor:
    """Per-position divergence (summed over the vocabulary), shape ``logits.shape[:-1]``.

    Not yet scaled by T²; `distillation_loss_sum` applies the scaling and the mask.
    """
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(f"student logits {tuple(student_logits.shape)} != teacher logits {tuple(teacher_logits.shape)}")
    log_s = F.log_softmax(student_logits.float() / temperature, dim=-1)
    log_t = F.log_softmax(teacher_logits.float() / temperature, dim=-1)
    if kind == "forward_kl" or (kind == "jsd" and beta == 0.0):
        return _kl(log_t, log_s)
    if kind == "reverse_kl" or (kind == "jsd" and beta == 1.0):
        return _kl(log_s, log_t)
    if kind != "jsd":
        raise ValueError(f"unknown divergence `{kind}` (forward_kl, reverse_kl, jsd)")
    log_m = torch.logsumexp(torch.stack([log_t + math.log(beta), log_s + math.log(1.0 - beta)]), dim=0)
    return beta * _kl(log_t, log_m) + (1.0 - beta) * _kl(log_s, log_m)


def distillation_loss_sum(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    labels: torch.Tensor,
    kind: Divergence = "forward_kl",
    temperature: float = 2.0,
    alpha: float = 0.5,
    beta: float = 0.5,
) -> tuple[torch.Tensor, int, dict[str, torch.Tensor]]:
    """``α·T²·D(teacher, student) + (1-α)·CE(labels)`` summed over supervised positions.

    Both terms cover the same positions (labels != -100 after the causal shift); the
    divergence is summed over the vocabulary first and ignored positions are dropped
    afterwards, so a batch where every position is ignored gives exactly 0. Returns
    ``(loss_sum, n_tokens, {"kd": kd_sum, "ce": ce_sum})`` (metric sums, unscaled by α).
    """
    mask = shifted_targets(labels) != IGNORE_INDEX
    n_tokens = int(mask.sum())
    per_position = token_divergence(student_logits, teacher_logits, kind, temperature, beta)
    kd_sum = torch.where(mask, per_position, torch.zeros_like(per_position)).sum() * temperature**2
    ce_sum, _ = causal_lm_loss_sum(student_logits, labels)
    loss = alpha * kd_sum + (1.0 - alpha) * ce_sum
    return loss, n_tokens, {"kd": kd_sum.detach(), "ce": ce_sum.detach()}


def align_vocab(student_logits: torch.Tensor, teacher_logits: torch.Tensor, vocab_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Slice both logits to the tokenizer's vocabulary (embedding rows past it are padding).

    Models often pad their embedding matrix to a multiple of 64 or 128; those rows are
    never real tokens. A model with *fewer* rows than the tokenizer is a real mismatch.
    """
    for who, logits in (("student", student_logits), ("teacher", teacher_logits)):
        if logits.size(-1) < vocab_size:
            raise ValueError(f"{who} has {logits.size(-1)} output rows but the shared tokenizer has {vocab_size} tokens")
    return student_logits[..., :vocab_size], teacher_logits[..., :vocab_size]

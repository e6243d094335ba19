"""Summed completion log-probabilities of causal LMs, in fp32.

Position t's logits predict token t+1, so the completion mask is shifted by one: the
first prompt token is never scored and each completion token is scored by the logits
of the position before it. Only completion positions are gathered before the fp32
``log_softmax``, so a large vocabulary does not cost ``B × T × V`` fp32 memory.
"""

from __future__ import annotations

import torch


def position_ids_from_mask(attention_mask: torch.Tensor) -> torch.Tensor:
    """Positions that ignore left padding (0 at each row's first real token)."""
    return (attention_mask.long().cumsum(-1) - 1).clamp(min=0)


def completion_logps(
    logits: torch.Tensor, input_ids: torch.Tensor, completion_mask: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-row (sum of completion token log-probs, number of completion tokens), fp32.

    `completion_mask` is 1 on the tokens to score (aligned with `input_ids`, not shifted).
    """
    shift_logits = logits[:, :-1]
    shift_labels = input_ids[:, 1:]
    shift_mask = completion_mask[:, 1:].bool()
    rows = torch.nonzero(shift_mask, as_tuple=True)
    selected = shift_logits[rows].float()  # [n_completion_tokens, vocab]
    token_logps = selected.log_softmax(-1).gather(-1, shift_labels[rows].unsqueeze(-1)).squeeze(-1)
    sums = torch.zeros(input_ids.shape[0], dtype=torch.float32, device=logits.device)
    sums = sums.index_add(0, rows[0], token_logps)
    return sums, shift_mask.sum(-1)


def per_token_logps(logits: torch.Tensor, input_ids: torch.Tensor) -> torch.Tensor:
    """fp32 log-prob of every next token, ``[B, T-1]`` (for RLOO's per-token KL)."""
    logps = logits[:, :-1].float().log_softmax(-1)
    return logps.gather(-1, input_ids[:, 1:].unsqueeze(-1)).squeeze(-1)


def sequence_logps(model, batch: dict[str, torch.Tensor], temperature: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Run `model` once on a batch and return (summed completion log-probs, token counts).

    Position ids come from the attention mask so a left-padded row is scored exactly as
    the same row right-padded. `temperature` divides the logits first: on-policy methods
    score samples under the distribution they were drawn from (as TRL's RLOO does).
    """
    out = model(
        input_ids=batch["input_ids"],
        attention_mask=batch["attention_mask"],
        position_ids=position_ids_from_mask(batch["attention_mask"]),
        use_cache=False,
    )
    logits = out.logits if temperature == 1.0 else out.logits / temperature
    return completion_logps(logits, batch["input_ids"], batch["completion_mask"])

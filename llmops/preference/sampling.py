"""On-policy sampling for RLOO: pure temperature sampling, keyed noise, ranks in step.

Why not ``model.generate``:

- Under FSDP2 the prepared model *is* the sharding root; ``PeftModel.generate`` calls the
  inner transformers model, whose sub-modules are FSDP units without a root ("FSDP
  requires a single root module"). Here every forward goes through the module we are
  given, i.e. the root, so parameters are gathered and freed exactly as in training.
- Sharded ranks must run the same number of forwards even when one rank's samples all
  end early (each forward is a collective): with ``synced`` the loop stops only when
  no rank has an unfinished row (the ``synced_gpus`` of transformers, made explicit).
- Each row draws its Gumbel noise from its own generator, seeded by a *key* (the run's
  seed, the micro-batch position, the example's index, the sample number): a sample does
  not depend on which rank drew it, on the batch it was drawn in, or on the global RNG,
  so 2 processes × B sample exactly what 1 process × 2B samples, validation uses the same
  noise at every evaluation, and resuming needs no RNG state.

``argmax(logits / T + Gumbel)`` is an exact sample of ``softmax(logits / T)``; nothing
else (top-k, penalties, a checkpoint's ``generation_config.json``) changes the
distribution, so the sampled tokens are scored under the distribution they came from.
"""

from __future__ import annotations

import hashlib
from typing import Callable, Sequence

import torch

from llmops.preference.logps import position_ids_from_mask


def key_seed(*parts: int | str) -> int:
    """A 63-bit seed from a key (stable across processes and Python runs, unlike hash())."""
    digest = hashlib.sha256("/".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


def _gumbel(generators: Sequence[torch.Generator], vocab: int, device: torch.device) -> torch.Tensor:
    """Standard Gumbel noise ``[rows, vocab]``, row r from generators[r] (float64 for no ties at 0/1)."""
    u = torch.stack([torch.rand(vocab, generator=g, dtype=torch.float64) for g in generators])
    tiny = torch.finfo(torch.float64).tiny
    return (-torch.log(-torch.log(u.clamp(min=tiny, max=1.0 - 1e-16)))).to(device)


@torch.no_grad()
def sample_completions(
    model: torch.nn.Module,
    prompt_ids: torch.Tensor,
    prompt_mask: torch.Tensor,
    seeds: Sequence[int],
    *,
    max_new_tokens: int,
    temperature: float,
    eos_token_id: int | Sequence[int] | None,
    pad_token_id: int,
    others_unfinished: Callable[[bool], bool] | None = None,
) -> torch.Tensor:
    """Completions ``[rows, n]`` (n ≤ max_new_tokens) for left-padded prompts; ``pad`` after a row's eos.

    `seeds` gives one noise seed per row. `others_unfinished(local)` (sharded runs) returns
    whether any rank still has an unfinished row; the loop runs until none has.
    """
    if len(seeds) != prompt_ids.shape[0]:
        raise ValueError(f"{len(seeds)} seeds for {prompt_ids.shape[0]} rows")
    device = prompt_ids.device
    generators = [torch.Generator().manual_seed(int(s)) for s in seeds]
    eos = torch.tensor([eos_token_id] if isinstance(eos_token_id, int) else list(eos_token_id or []), device=device)
    mask = prompt_mask.clone()
    positions = position_ids_from_mask(mask)
    inputs, past = prompt_ids, None
    finished = torch.zeros(prompt_ids.shape[0], dtype=torch.bool, device=device)
    tokens: list[torch.Tensor] = []
    for _ in range(max_new_tokens):
        out = model(input_ids=inputs, attention_mask=mask, position_ids=positions, past_key_values=past, use_cache=True)
        past = out.past_key_values
        logits = out.logits[:, -1].double() / temperature
        nxt = (logits + _gumbel(generators, logits.shape[-1], device)).argmax(-1)
        nxt = torch.where(finished, torch.full_like(nxt, pad_token_id), nxt)
        tokens.append(nxt)
        finished |= torch.isin(nxt, eos)
        local_unfinished = not bool(finished.all())
        go_on = others_unfinished(local_unfinished) if others_unfinished is not None else local_unfinished
        if not go_on:
            break
        inputs = nxt.unsqueeze(-1)
        positions = positions[:, -1:] + 1
        mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=1)
    return torch.stack(tokens, dim=1) if tokens else prompt_ids.new_zeros((prompt_ids.shape[0], 0))

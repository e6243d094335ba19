"""Saving and hashing a model whose parameters are sharded (FSDP, DeepSpeed ZeRO-3).

A sharded parameter is a `DTensor` (FSDP2) or an empty placeholder (ZeRO-3): calling
``.numpy()`` on it, or ``save_pretrained``/``merge_and_unload`` on the wrapped model,
fails or writes a shard. The engine instead

1. keeps, on the main process only, a *skeleton* of the trainable model taken before
   ``prepare``: the same modules with every parameter on the ``meta`` device (no memory);
2. gathers the full state dict **once** at the end (a collective on every rank);
3. loads it into the skeleton on the main process, giving a plain CPU model that the
   task saves (and merges) exactly as in a single-process run; the weights hash is
   computed from the same gathered tensors and shared with every rank.
"""

from __future__ import annotations

import copy
import hashlib
from typing import Any, Iterable, Mapping

import torch


def meta_skeleton(model: torch.nn.Module) -> torch.nn.Module:
    """A deep copy of `model` whose parameters live on ``meta`` (buffers are copied).

    Tied parameters stay tied: the copy maps each parameter object once.
    """
    memo: dict[int, Any] = {}
    for param in model.parameters():
        if id(param) not in memo:
            # a ZeRO-3 placeholder built under deepspeed.zero.Init has shape [0]; ds_shape is the real one
            shape = getattr(param, "ds_shape", param.shape)
            memo[id(param)] = torch.nn.Parameter(torch.empty(shape, dtype=param.dtype, device="meta"),
                                                 requires_grad=param.requires_grad)
    return copy.deepcopy(model, memo)


def materialise(skeleton: torch.nn.Module, state_dict: Mapping[str, torch.Tensor]) -> torch.nn.Module:
    """Load a gathered full state dict into a skeleton (``assign``: no second copy)."""
    missing, unexpected = skeleton.load_state_dict(dict(state_dict), strict=False, assign=True)
    still_meta = [n for n, p in skeleton.named_parameters() if p.is_meta]
    if still_meta or unexpected:
        raise RuntimeError(
            f"gathered state dict does not fit the model: {len(still_meta)} parameters left unset "
            f"(e.g. {still_meta[:3]}), unexpected keys {list(unexpected)[:3]}"
        )
    tie = getattr(skeleton, "tie_weights", None)
    if callable(tie):
        tie()
    return skeleton.eval()


def gather_full_state_dict(accelerator: Any, model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Full (unsharded) state dict on the main process ({} or partial elsewhere); every rank must call it."""
    state = accelerator.get_state_dict(model)
    return {k: v for k, v in state.items()} if accelerator.is_main_process else {}


def sha256_of(named: Iterable[tuple[str, torch.Tensor]]) -> str:
    """sha256 over names and float32 bytes, in name order (the same for whole or gathered weights)."""
    digest = hashlib.sha256()
    for name, tensor in sorted(named, key=lambda item: item[0]):
        digest.update(name.encode())
        digest.update(tensor.detach().float().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def broadcast_str(accelerator: Any, value: str | None) -> str:
    """The main process's `value` on every rank."""
    from accelerate.utils import broadcast_object_list

    box = [value]
    if accelerator.num_processes > 1:
        broadcast_object_list(box, from_process=0)
    return str(box[0])

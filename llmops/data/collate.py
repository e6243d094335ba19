"""Batching tokenised SFT examples: padding, and packing several examples per row.

Packing isolation is explicit. transformers 5.x only infers sample boundaries from
`position_ids` when no attention mask is passed *and* no KV cache exists (measured with
Llama 5.24: a plain ``model(input_ids, position_ids=...)`` forward, train mode or not,
builds a cache and lets packed samples attend to each other). So `PackedCollator`
builds the block-diagonal causal mask itself, as a 4D additive float mask, which
both the sdpa and eager attention paths accept as is; ``mask="position_ids"`` instead
relies on the model (for flash-attention; call the model with ``use_cache=False``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

IGNORE = -100


@dataclass
class SFTCollator:
    """Right-pad a list of ``{"input_ids", "labels"}`` to the longest; labels -100 on pads."""

    pad_token_id: int
    pad_to_multiple_of: int | None = None

    def __call__(self, examples: list[dict[str, list[int]]]) -> dict[str, Any]:
        import torch

        length = max(len(ex["input_ids"]) for ex in examples)
        if self.pad_to_multiple_of:
            length = -(-length // self.pad_to_multiple_of) * self.pad_to_multiple_of
        input_ids = torch.full((len(examples), length), self.pad_token_id, dtype=torch.long)
        labels = torch.full((len(examples), length), IGNORE, dtype=torch.long)
        attention_mask = torch.zeros((len(examples), length), dtype=torch.long)
        for i, ex in enumerate(examples):
            n = len(ex["input_ids"])
            input_ids[i, :n] = torch.tensor(ex["input_ids"])
            labels[i, :n] = torch.tensor(ex["labels"])
            attention_mask[i, :n] = 1
        return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}


def pack_examples(examples: list[dict[str, list[int]]], max_length: int) -> list[dict[str, list[int]]]:
    """Greedily concatenate examples (in order) into rows of at most `max_length` tokens.

    Each row carries ``input_ids``, ``labels``, ``position_ids`` (restarting at 0 for
    every example) and ``seq_lens``. An example longer than `max_length` is truncated.
    Each example's first label becomes -100: causal LMs shift labels left, so it would
    otherwise be predicted from the previous example's last token (unpacked, it is never
    a target either). Order-preserving and deterministic, so shuffling stays the caller's (seeded) choice.
    """
    rows: list[dict[str, list[int]]] = []
    current: dict[str, list[int]] = {"input_ids": [], "labels": [], "position_ids": [], "seq_lens": []}
    for ex in examples:
        ids, labels = ex["input_ids"][:max_length], ex["labels"][:max_length]
        if current["input_ids"] and len(current["input_ids"]) + len(ids) > max_length:
            rows.append(current)
            current = {"input_ids": [], "labels": [], "position_ids": [], "seq_lens": []}
        current["input_ids"] += ids
        current["labels"] += [IGNORE, *labels[1:]]
        current["position_ids"] += list(range(len(ids)))
        current["seq_lens"].append(len(ids))
    if current["input_ids"]:
        rows.append(current)
    return rows


def block_causal_mask(seq_lens: list[list[int]], length: int, dtype=None):
    """(B, 1, L, L) additive mask: 0 where a token may attend (same sample, not future), min elsewhere.

    Padding at the end of a row forms its own block, so every query row attends to at
    least itself (no all-masked rows, hence no NaN in softmax).
    """
    import torch

    dtype = dtype or torch.float32
    mask = torch.full((len(seq_lens), 1, length, length), torch.finfo(dtype).min, dtype=dtype)
    causal = torch.ones(length, length, dtype=torch.bool).tril()
    for b, lens in enumerate(seq_lens):
        segment = torch.repeat_interleave(
            torch.arange(len(lens) + 1), torch.tensor([*lens, length - sum(lens)])
        )
        allowed = (segment[:, None] == segment[None, :]) & causal
        mask[b, 0].masked_fill_(allowed, 0.0)
    return mask


@dataclass
class PackedCollator:
    """Batch packed rows: ``input_ids``, ``labels``, ``position_ids`` and an isolating attention mask.

    ``mask="4d"`` (default) returns the block-diagonal causal mask as ``attention_mask``
    (pass `mask_dtype` = the model's compute dtype for bf16/fp16 models).
    ``mask="position_ids"`` returns no attention mask; the model must derive the
    boundaries from ``position_ids`` (flash-attention, or HF with ``use_cache=False``).
    """

    pad_token_id: int
    mask: Literal["4d", "position_ids"] = "4d"
    mask_dtype: Any = None

    def __call__(self, rows: list[dict[str, list[int]]]) -> dict[str, Any]:
        import torch

        length = max(len(r["input_ids"]) for r in rows)
        batch = len(rows)
        input_ids = torch.full((batch, length), self.pad_token_id, dtype=torch.long)
        labels = torch.full((batch, length), IGNORE, dtype=torch.long)
        position_ids = torch.zeros((batch, length), dtype=torch.long)
        for i, r in enumerate(rows):
            n = len(r["input_ids"])
            input_ids[i, :n] = torch.tensor(r["input_ids"])
            labels[i, :n] = torch.tensor(r["labels"])
            position_ids[i, :n] = torch.tensor(r["position_ids"])
            position_ids[i, n:] = torch.arange(length - n)  # padding: its own segment
        out = {"input_ids": input_ids, "labels": labels, "position_ids": position_ids}
        if self.mask == "4d":
            out["attention_mask"] = block_causal_mask([r["seq_lens"] for r in rows], length, self.mask_dtype)
        return out

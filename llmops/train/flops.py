"""Model FLOPs of causal-LM training, and model-FLOPs utilisation (MFU).

Counted over every non-padding token a step processes (not only supervised ones: the
prompt tokens cost the same forward and backward), for a batch of samples of lengths
``s_j`` (a packed row contributes each of its samples; attention never crosses them):

    F = sum_j [ s_j * (6 * N_body + 6 * V * d)  +  6 * L * d * s_j * (s_j + 1) ]

- ``6 * N_body``: forward (2) + backward (4) multiply-adds over the non-embedding
  parameters of the decoder layers (Kaplan et al. 2020);
- ``6 * V * d``: the LM head (vocabulary V, hidden d), tied or not; the embedding
  lookup costs nothing;
- attention scores and the weighted sum: 2 matmuls x 2 FLOPs x d per attended token per
  layer, forward and backward (x3); a causal token at position i attends i + 1 tokens,
  summing to s(s+1)/2 per sample: ``12 * L * d * s(s+1)/2``.

MFU = F / (seconds * peak FLOP/s). LoRA runs use the same *model* FLOPs (as is usual for
MFU), so their MFU measures speed against full training of the same model, not the
hardware's arithmetic.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable


@dataclass(frozen=True)
class ModelShape:
    """What the FLOPs count needs from a decoder-only config."""

    body_params: int  # parameters outside the embedding and LM head
    layers: int
    hidden: int
    vocab: int

    @classmethod
    def of(cls, model) -> "ModelShape":
        """From a transformers causal LM (peft-wrapped or not; LoRA matrices are not counted)."""
        inner = model.get_base_model() if hasattr(model, "get_base_model") else model
        config = inner.config
        embeddings = {id(p) for p in inner.get_input_embeddings().parameters()}
        head = inner.get_output_embeddings()
        if head is not None:
            embeddings |= {id(p) for p in head.parameters()}
        body = sum(p.numel() for n, p in inner.named_parameters() if id(p) not in embeddings and "lora_" not in n)
        return cls(body, config.num_hidden_layers, config.hidden_size, config.vocab_size)


def training_flops(shape: ModelShape, sample_lengths: Iterable[int]) -> float:
    """Model FLOPs of one forward + backward over samples of the given (non-padding) lengths."""
    total = 0.0
    per_token = 6 * shape.body_params + 6 * shape.vocab * shape.hidden
    for s in sample_lengths:
        total += s * per_token + 6 * shape.layers * shape.hidden * s * (s + 1)
    return total


def mfu(flops: float, seconds: float, peak_flops_per_s: float) -> float:
    """Achieved model FLOP/s over the hardware's peak (dense, the training dtype's)."""
    if seconds <= 0 or peak_flops_per_s <= 0:
        raise ValueError("seconds and peak FLOP/s must be positive")
    return flops / seconds / peak_flops_per_s


# Peak dense bf16 tensor-core FLOP/s (vendor datasheets, without sparsity).
PEAK_BF16_FLOPS = {"H200": 989e12, "H100": 989e12, "A100": 312e12, "L40S": 362e12, "A10G": 125e12, "L4": 121e12}


def peak_bf16_flops(device_name: str) -> float | None:
    return next((v for k, v in PEAK_BF16_FLOPS.items() if k in device_name), None)

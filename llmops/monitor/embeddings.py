"""Embedding drift: the served model's own mean-pooled hidden states as a per-prompt feature.

Lengths and tokens miss a shift in *meaning* (same words, other intent); the model's
hidden states see what the model sees. The embedding of a prompt is the mean over its
non-padding tokens of one layer's hidden state (default: the last), computed in batches
without gradients. The profile stores the reference's mean and per-dimension spread and
thresholds calibrated like every other feature (`llmops.monitor.calibration`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from llmops.errors import DataError


def embedding_spec(model_ref: str, layer: int = -1, max_length: int = 256, batch_size: int = 16) -> dict[str, Any]:
    return {"kind": "hf", "ref": model_ref, "layer": layer, "max_length": max_length, "batch_size": batch_size}


def make_embedder(spec: dict[str, Any]):
    """A function prompts -> array (n, hidden) for a profile's embedding spec (the model loads once)."""
    if spec.get("kind") != "hf" or not spec.get("ref"):
        raise DataError(f"drift profile embedding spec {spec!r}: expected {{kind: hf, ref: MODEL}}")
    import torch

    from llmops.models.loading import load_causal_lm, load_tokenizer

    tok = load_tokenizer(spec["ref"])
    tok.padding_side = "right"
    model = load_causal_lm(spec["ref"]).eval()
    layer, max_length, batch_size = int(spec.get("layer", -1)), int(spec.get("max_length", 256)), \
        int(spec.get("batch_size", 16))

    def embed(prompts: list[str]) -> np.ndarray:
        out = []
        with torch.inference_mode():
            for i in range(0, len(prompts), batch_size):
                enc = tok(prompts[i: i + batch_size], return_tensors="pt", padding=True, truncation=True,
                          max_length=max_length)
                hidden = model(**enc, output_hidden_states=True).hidden_states[layer]
                mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
                out.append(pooled.float().cpu().numpy())
        return np.concatenate(out, axis=0)

    return embed

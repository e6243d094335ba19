"""Grow a Llama model deeper without changing its function (for the built-in teacher).

A pre-norm residual block whose output projections (attention ``o_proj`` and MLP
``down_proj``) are zero adds nothing to the residual stream, so a deeper copy with such
blocks interleaved computes exactly what the parent computes. Training then continues
from the parent's loss instead of from noise: within a CPU budget of under a minute,
that is what makes the larger built-in teacher actually better than `builtin:tiny`.
"""

from __future__ import annotations


def deepen(parent, child) -> None:
    """Copy `parent` into `child` (k times as many layers, same widths); new layers start as identity."""
    import torch

    p_layers, c_layers = parent.model.layers, child.model.layers
    if len(c_layers) % len(p_layers):
        raise ValueError(f"child layers ({len(c_layers)}) must be a multiple of parent layers ({len(p_layers)})")
    for attr in ("hidden_size", "intermediate_size", "num_attention_heads", "num_key_value_heads", "vocab_size"):
        if getattr(parent.config, attr) != getattr(child.config, attr):
            raise ValueError(f"parent and child differ in {attr}")
    k = len(c_layers) // len(p_layers)
    with torch.no_grad():
        child.model.embed_tokens.load_state_dict(parent.model.embed_tokens.state_dict())
        child.model.norm.load_state_dict(parent.model.norm.state_dict())
        if not child.config.tie_word_embeddings:
            child.lm_head.load_state_dict(parent.lm_head.state_dict())
        for i, layer in enumerate(c_layers):
            if i % k == 0:
                layer.load_state_dict(p_layers[i // k].state_dict())
            else:
                layer.self_attn.o_proj.weight.zero_()
                layer.mlp.down_proj.weight.zero_()

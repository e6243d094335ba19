"""Pruning: unstructured magnitude pruning and structured removal of MLP channels.

Both act on the decoder's linear layers only (embeddings and the LM head are kept: they
are tied in small models and pruning them hurts most). Structured pruning needs a gated
MLP (``gate_proj``/``up_proj``/``down_proj``: Llama, Qwen, Mistral, Gemma); it removes
the same number of channels from every layer so that ``config.intermediate_size`` stays
one number and plain transformers loads the result.
"""

from __future__ import annotations

from typing import Any

import torch

from llmops.errors import UserError


def _decoder_linears(model: torch.nn.Module) -> dict[str, torch.nn.Linear]:
    heads = {id(m) for m in (model.get_input_embeddings(), model.get_output_embeddings()) if m is not None}
    return {n: m for n, m in model.named_modules() if isinstance(m, torch.nn.Linear) and id(m) not in heads}


@torch.no_grad()
def magnitude_prune(model: torch.nn.Module, sparsity: float) -> dict[str, torch.Tensor]:
    """Zero the `sparsity` share of smallest |w| in every decoder linear layer; returns the keep-masks."""
    masks = {}
    for name, lin in _decoder_linears(model).items():
        w = lin.weight
        k = int(round(sparsity * w.numel()))
        if k == 0:
            continue
        threshold = w.abs().flatten().kthvalue(k).values
        mask = w.abs() > threshold
        w.mul_(mask)
        masks[name] = mask
    if not masks:
        raise UserError("no decoder linear layers to prune")
    return masks


@torch.no_grad()
def apply_masks(model: torch.nn.Module, masks: dict[str, torch.Tensor]) -> None:
    """Re-zero pruned weights (after a recovery fine-tune moved them)."""
    linears = _decoder_linears(model)
    for name, mask in masks.items():
        linears[name].weight.mul_(mask.to(linears[name].weight.device))


def sparsity_of(model: torch.nn.Module) -> float:
    """Share of exactly-zero weights over the decoder linear layers."""
    zeros = total = 0
    for lin in _decoder_linears(model).values():
        zeros += int((lin.weight == 0).sum())
        total += lin.weight.numel()
    return zeros / max(total, 1)


def _slice_linear(lin: torch.nn.Linear, keep: torch.Tensor, dim: int) -> None:
    lin.weight = torch.nn.Parameter(lin.weight.index_select(dim, keep).clone())
    if lin.bias is not None and dim == 0:
        lin.bias = torch.nn.Parameter(lin.bias.index_select(0, keep).clone())
    if dim == 0:
        lin.out_features = len(keep)
    else:
        lin.in_features = len(keep)


@torch.no_grad()
def structured_prune(model: torch.nn.Module, fraction: float) -> dict[str, Any]:
    """Remove `fraction` of the MLP channels of every layer, ranked by ‖gate_j‖·‖up_j‖·‖down_:,j‖."""
    mlps = [m for m in model.modules() if all(hasattr(m, a) for a in ("gate_proj", "up_proj", "down_proj"))]
    if not mlps:
        raise UserError("prune-structured needs a gated MLP (gate_proj/up_proj/down_proj: Llama, Qwen, Mistral); "
                        "use prune-magnitude for other architectures")
    inter = mlps[0].gate_proj.out_features
    keep_n = max(1, int(round(inter * (1 - fraction))))
    for mlp in mlps:
        score = (mlp.gate_proj.weight.norm(dim=1) * mlp.up_proj.weight.norm(dim=1) * mlp.down_proj.weight.norm(dim=0))
        keep = score.topk(keep_n).indices.sort().values
        _slice_linear(mlp.gate_proj, keep, 0)
        _slice_linear(mlp.up_proj, keep, 0)
        _slice_linear(mlp.down_proj, keep, 1)
        if hasattr(mlp, "intermediate_size"):
            mlp.intermediate_size = keep_n
    model.config.intermediate_size = keep_n
    return {"intermediate_size_before": inter, "intermediate_size_after": keep_n, "layers": len(mlps)}

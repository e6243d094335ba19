"""GPU essentials: attention kernel, QLoRA loading, AdamW kernel, compile, packing mode, final dtype.

Each is a recipe key with a default that is right on CPU and on GPU; a key that cannot
work on this machine is refused with the reason (never silently ignored):

- ``model.attn_implementation``: unset = sdpa where the architecture supports it (else
  eager, e.g. Gemma 2); flash_attention_2/3 need their package and CUDA;
- ``model.load_in_4bit`` (QLoRA): NF4 base weights through bitsandbytes, CUDA only;
- ``train.optimizer_impl``: fused AdamW on CUDA, torch's default elsewhere (identical maths);
- ``train.compile``: ``torch.compile`` of the trainable model, in place (state-dict keys
  unchanged, so checkpoints and final/ are the same as without it);
- packing: *padding-free* (sample boundaries from ``position_ids``; the model builds its
  own mask, or none at all with flash-attention) when the model's attention goes through
  transformers' attention interface, else the explicit block-diagonal 4D mask, in the
  model's own dtype (a float32 mask never meets bf16 attention);
- ``output.dtype``: the dtype of the weights written to final/.
"""

from __future__ import annotations

import importlib.util
from typing import Any, Literal

import torch

from llmops.config.schema import Recipe, TrainSection
from llmops.errors import ConfigError

FLASH_PACKAGES = {"flash_attention_2": "flash_attn", "flash_attention_3": "flash_attn_interface"}


def model_load_kwargs(recipe: Recipe) -> dict[str, Any]:
    """Keyword arguments for ``from_pretrained``: attention kernel and 4-bit quantisation."""
    m = recipe.model
    # unset: transformers' own choice (sdpa where the architecture supports it, else eager)
    kwargs: dict[str, Any] = {"attn_implementation": m.attn_implementation} if m.attn_implementation else {}
    package = FLASH_PACKAGES.get(m.attn_implementation or "")
    if package and (importlib.util.find_spec(package) is None or not torch.cuda.is_available()):
        raise ConfigError(
            f"model.attn_implementation: {m.attn_implementation} needs the `{package}` package and a CUDA GPU "
            "(pip install flash-attn); use sdpa otherwise"
        )
    if m.load_in_4bit:
        kwargs["quantization_config"] = qlora_config(m.dtype)
    return kwargs


def qlora_config(dtype: str) -> Any:
    """NF4 with double quantisation, computing in the recipe's dtype (bf16 for auto/float32)."""
    if not torch.cuda.is_available():
        raise ConfigError("model.load_in_4bit (QLoRA) needs a CUDA GPU: bitsandbytes 4-bit kernels do not run on CPU")
    if importlib.util.find_spec("bitsandbytes") is None:
        raise ConfigError("model.load_in_4bit (QLoRA) needs bitsandbytes: pip install 'llmops[qlora]'")
    from transformers import BitsAndBytesConfig

    compute = torch.float16 if dtype == "float16" else torch.bfloat16
    return BitsAndBytesConfig(
        load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True, bnb_4bit_compute_dtype=compute
    )


def prepare_quantized(model: torch.nn.Module, recipe: Recipe) -> torch.nn.Module:
    """peft's k-bit preparation (norms in fp32, input grads) before LoRA wraps a 4-bit model."""
    if not recipe.model.load_in_4bit:
        return model
    from peft import prepare_model_for_kbit_training

    return prepare_model_for_kbit_training(model, use_gradient_checkpointing=recipe.model.gradient_checkpointing)


def adamw_kwargs(cfg: TrainSection, params: list[torch.nn.Parameter]) -> dict[str, Any]:
    """``fused``/``foreach`` flags for torch.optim.AdamW from ``train.optimizer_impl``."""
    impl = cfg.optimizer_impl
    on_cuda = bool(params) and all(p.is_cuda for p in params)
    if impl == "auto":
        if not on_cuda:
            return {}  # torch's own choice (the for-loop kernel on CPU), as transformers.Trainer's adamw_torch
        impl = "fused"
    if impl == "fused":
        if params and not all(p.is_floating_point() and p.device.type in ("cuda", "cpu", "xpu", "mps") for p in params):
            raise ConfigError("train.optimizer_impl: fused AdamW needs floating-point parameters on cuda/cpu")
        return {"fused": True}
    if impl == "foreach":
        return {"foreach": True}
    return {"foreach": False}


def maybe_compile(model: torch.nn.Module, cfg: TrainSection) -> torch.nn.Module:
    """``torch.compile`` in place (`Module.compile`): parameter names stay as they are."""
    if cfg.compile:
        model.compile()
    return model


def packing_mask(model: torch.nn.Module) -> Literal["position_ids", "4d"]:
    """Padding-free packing when the model derives sample boundaries from ``position_ids``.

    transformers' attention interface (``_supports_attention_backend``: Llama, Qwen,
    Mistral, Gemma, Phi-3, GPT-NeoX, GPT-2 …) builds its mask from packed position ids,
    or needs none with flash-attention; remote code and older models get the explicit mask.
    """
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    supported = bool(getattr(inner, "_supports_attention_backend", False))
    return "position_ids" if supported else "4d"


def model_dtype(model: torch.nn.Module) -> torch.dtype:
    """The dtype attention computes in: that of the first floating-point parameter."""
    for param in model.parameters():
        if param.is_floating_point():
            return param.dtype
    return torch.float32


def cast_for_output(model: torch.nn.Module, dtype: str | None) -> torch.nn.Module:
    """Cast the finished model to ``output.dtype`` (training is over; in place)."""
    if dtype:
        model.to(getattr(torch, dtype))
    return model

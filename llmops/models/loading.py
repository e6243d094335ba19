"""Load tokenizers and causal LMs from any model reference.

A LoRA adapter directory loads its base (recorded in ``llmops_model.json`` as a
reference, or peft's ``base_model_name_or_path``) and applies the adapter. Nothing
here knows about the built-in models: they are ordinary HF directories.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from llmops.errors import ModelRefError
from llmops.gc_policy import heavy_import
from llmops.models.refs import SIDECAR, ResolvedModel, adapter_base_ref, is_adapter_dir, resolve

__all__ = ["SIDECAR", "adapter_base_ref", "is_adapter_dir", "load_causal_lm", "load_tokenizer"]

log = logging.getLogger(__name__)

_DTYPES = {"float32": "float32", "bfloat16": "bfloat16", "float16": "float16", "auto": "auto"}


def _torch_dtype(dtype: str):
    import torch

    if dtype == "auto":
        return "auto"
    if dtype not in _DTYPES:
        raise ModelRefError(f"unknown dtype `{dtype}` (float32, bfloat16, float16, auto)")
    return getattr(torch, dtype)


def load_tokenizer(ref: str | ResolvedModel, revision: str | None = None, trust_remote_code: bool = False):
    """Tokenizer of a model (for an adapter: its own copy if saved, else its base's)."""
    with heavy_import("transformers"):  # also imports torch
        from transformers import AutoTokenizer

    model = resolve(ref, revision)
    tok = AutoTokenizer.from_pretrained(str(model.tokenizer_path), trust_remote_code=trust_remote_code)
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    return tok


def load_causal_lm(
    ref: str | ResolvedModel,
    dtype: str = "float32",
    adapter: str | ResolvedModel | None = None,
    revision: str | None = None,
    trust_remote_code: bool = False,
    trainable_adapter: bool = False,
    **kwargs: Any,
):
    """Load a causal LM; `ref` may itself be an adapter dir, `adapter` adds one on top."""
    with heavy_import("transformers.modeling_utils"):  # what every model class imports (the bulk)
        import transformers.modeling_utils  # noqa: F401
        from transformers import AutoModelForCausalLM

    resolved = resolve(ref, revision)
    adapter_path = None
    if resolved.is_adapter:
        if adapter:
            raise ModelRefError(f"{resolved.ref} is already an adapter; pass its base as the model and it as adapter")
        adapter_path = resolved.path
    elif adapter:
        adapter_path = resolve(adapter).path
    model = AutoModelForCausalLM.from_pretrained(
        str(resolved.weights_path), dtype=_torch_dtype(dtype), trust_remote_code=trust_remote_code, **kwargs
    )
    if adapter_path is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, str(adapter_path), is_trainable=trainable_adapter)
    return model

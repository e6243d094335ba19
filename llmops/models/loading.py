"""Load tokenizers and causal LMs from any model reference.

A LoRA adapter directory loads its base (recorded in ``llmops_model.json`` as a
reference, or peft's ``base_model_name_or_path``) and applies the adapter. Nothing
here knows about the built-in models: they are ordinary HF directories.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from llmops.errors import ModelRefError
from llmops.models.refs import resolve_model

log = logging.getLogger(__name__)
SIDECAR = "llmops_model.json"  # written next to saved models: base reference, kind, lineage hints

_DTYPES = {"float32": "float32", "bfloat16": "bfloat16", "float16": "float16", "auto": "auto"}


def is_adapter_dir(path: Path) -> bool:
    return (path / "adapter_config.json").exists() and not (path / "config.json").exists()


def adapter_base_ref(path: Path) -> str:
    """The reference of the base model an adapter directory was trained on."""
    sidecar = path / SIDECAR
    if sidecar.exists():
        base = json.loads(sidecar.read_text()).get("base_ref")
        if base:
            return base
    cfg = json.loads((path / "adapter_config.json").read_text())
    base = cfg.get("base_model_name_or_path")
    if not base:
        raise ModelRefError(f"{path}: adapter does not record its base model")
    return base


def _torch_dtype(dtype: str):
    import torch

    if dtype == "auto":
        return "auto"
    if dtype not in _DTYPES:
        raise ModelRefError(f"unknown dtype `{dtype}` (float32, bfloat16, float16, auto)")
    return getattr(torch, dtype)


def load_tokenizer(ref: str, revision: str | None = None, trust_remote_code: bool = False):
    """Tokenizer of a model (for an adapter: its own copy if saved, else its base's)."""
    from transformers import AutoTokenizer

    path = resolve_model(ref, revision)
    if is_adapter_dir(path) and not (path / "tokenizer_config.json").exists():
        path = resolve_model(adapter_base_ref(path))
    tok = AutoTokenizer.from_pretrained(str(path), trust_remote_code=trust_remote_code)
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    return tok


def load_causal_lm(
    ref: str,
    dtype: str = "float32",
    adapter: str | None = None,
    revision: str | None = None,
    trust_remote_code: bool = False,
    trainable_adapter: bool = False,
    **kwargs: Any,
):
    """Load a causal LM; `ref` may itself be an adapter dir, `adapter` adds one on top."""
    from transformers import AutoModelForCausalLM

    path = resolve_model(ref, revision)
    if is_adapter_dir(path):
        if adapter:
            raise ModelRefError(f"{ref} is already an adapter; pass its base as the model and it as adapter")
        adapter, path = str(path), resolve_model(adapter_base_ref(path))
    model = AutoModelForCausalLM.from_pretrained(
        str(path), dtype=_torch_dtype(dtype), trust_remote_code=trust_remote_code, **kwargs
    )
    if adapter:
        from peft import PeftModel

        adapter_path = resolve_model(adapter)
        model = PeftModel.from_pretrained(model, str(adapter_path), is_trainable=trainable_adapter)
    return model

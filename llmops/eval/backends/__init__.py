"""Inference backends behind one interface (`Backend`: generate, loglikelihood)."""

from __future__ import annotations

from typing import Any

from llmops.errors import UserError
from llmops.eval.backends.base import Backend, Generation, GenerationParams, Loglikelihood, Prompt, TokenBackend
from llmops.models.refs import ResolvedModel

BACKENDS = ("hf", "vllm", "openai")
_API_OPTIONS = ("base_url", "api_key_env", "concurrency")


def load_backend(name: str, model_ref: str | ResolvedModel, **kwargs: Any) -> Backend:
    """Instantiate backend `name` for `model_ref` (kwargs: dtype, device, batch_size, max_length, seed,
    tokenizer — the caller's already loaded tokenizer, so it is loaded once)."""
    if name == "openai":
        from llmops.eval.backends.openai_api import OpenAIBackend

        api = {k: kwargs[k] for k in _API_OPTIONS if kwargs.get(k) is not None}
        return OpenAIBackend(str(model_ref), **api)
    for key in _API_OPTIONS:
        kwargs.pop(key, None)
    if name == "hf":
        from llmops.eval.backends.hf import HFBackend

        kwargs.pop("seed", None)
        kwargs.pop("max_model_len", None)  # a vLLM engine setting
        return HFBackend(model_ref, **kwargs)
    if name == "vllm":
        from llmops.eval.backends.vllm import VLLMBackend

        kwargs.pop("device", None)
        kwargs.pop("batch_size", None)  # vLLM schedules its own batches
        return VLLMBackend(model_ref, **kwargs)
    raise UserError(f"unknown backend `{name}` (choose from {', '.join(BACKENDS)})")


__all__ = ["BACKENDS", "Backend", "Generation", "GenerationParams", "Loglikelihood", "Prompt", "TokenBackend",
           "load_backend"]

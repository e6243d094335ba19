"""Model references (builtin, hub, local path, registry) resolved once, and loading."""

from llmops.models.refs import ModelRef, ResolvedModel, model_hash, parse_ref, register_resolver, resolve, resolve_model

__all__ = ["ModelRef", "ResolvedModel", "model_hash", "parse_ref", "register_resolver", "resolve", "resolve_model"]

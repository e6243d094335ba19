"""Model references (builtin, hub, local path, registry) and loading."""

from llmops.models.refs import ModelRef, model_hash, parse_ref, resolve_model

__all__ = ["ModelRef", "model_hash", "parse_ref", "resolve_model"]

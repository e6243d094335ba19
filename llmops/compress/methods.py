"""The compression methods `llmops compress --method` accepts, and what each one needs.

Quantization goes through transformers' `TorchAoConfig` so that the saved folder carries
its ``quantization_config`` in config.json and `AutoModelForCausalLM.from_pretrained`
loads it with no llmops code. Pruning produces an ordinary dense checkpoint.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from llmops.errors import ConfigError


@dataclass(frozen=True)
class Method:
    name: str
    kind: Literal["quantize", "prune"]
    summary: str
    needs_cuda: bool = False
    settings: dict[str, Any] = field(default_factory=dict)  # defaults; --set KEY=VALUE overrides


METHODS: dict[str, Method] = {
    m.name: m
    for m in (
        Method("int8-weight", "quantize", "int8 weights (per-channel), activations in the model dtype"),
        Method("int8-dynamic", "quantize", "int8 weights and dynamically quantized int8 activations"),
        Method("int4-weight", "quantize", "packed int4 weights, group-wise scales (tinygemm kernels)", needs_cuda=True,
               settings={"group_size": 128}),
        Method("intx4-weight", "quantize", "int4 weights (group-wise) stored unpacked in int8: int4 accuracy, "
               "int8 size; the CPU-capable int4", settings={"group_size": 32}),
        Method("prune-magnitude", "prune", "zero the smallest-magnitude weights of every decoder linear layer "
               "(unstructured; same size on disk, sparse)", settings={"sparsity": 0.5}),
        Method("prune-structured", "prune", "remove the least important MLP channels of every decoder layer "
               "(intermediate_size shrinks: smaller and faster)", settings={"fraction": 0.25}),
    )
}


def get_method(name: str, overrides: dict[str, Any] | None = None) -> tuple[Method, dict[str, Any]]:
    """(method, effective settings); unknown methods and settings are errors naming the choices."""
    if name not in METHODS:
        raise ConfigError(f"unknown --method `{name}` (one of {', '.join(METHODS)})")
    method = METHODS[name]
    settings = dict(method.settings)
    for key, value in (overrides or {}).items():
        if key not in settings:
            allowed = ", ".join(settings) or "none"
            raise ConfigError(f"--method {name} has no setting `{key}` (settings: {allowed})")
        settings[key] = type(settings[key])(value)
    if "sparsity" in settings and not 0 < settings["sparsity"] < 1:
        raise ConfigError(f"sparsity must be in (0, 1), got {settings['sparsity']}")
    if "fraction" in settings and not 0 < settings["fraction"] < 1:
        raise ConfigError(f"fraction must be in (0, 1), got {settings['fraction']}")
    if "group_size" in settings and settings["group_size"] not in (32, 64, 128, 256):
        raise ConfigError(f"group_size must be 32, 64, 128 or 256, got {settings['group_size']}")
    return method, settings

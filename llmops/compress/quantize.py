"""Weight quantization through torchao, applied by transformers at load time and saved as safetensors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from llmops.compress.methods import Method
from llmops.errors import UserError


def torchao_config(method: Method, settings: dict[str, Any]):
    """The torchao config object for a method (imports torchao lazily, with an install hint)."""
    try:
        import torch
        import torchao.quantization as q
        from torchao.quantization.granularity import PerGroup
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise UserError(f"--method {method.name} needs torchao: pip install 'llmops[compress]' ({exc})") from None
    if method.name == "int8-weight":
        return q.Int8WeightOnlyConfig()
    if method.name == "int8-dynamic":
        return q.Int8DynamicActivationInt8WeightConfig()
    if method.name == "int4-weight":
        return q.Int4WeightOnlyConfig(group_size=settings["group_size"])
    if method.name == "intx4-weight":
        return q.IntxWeightOnlyConfig(weight_dtype=torch.int4, granularity=PerGroup(settings["group_size"]))
    raise UserError(f"{method.name} is not a quantization method")


def check_device(method: Method, device: str) -> None:
    """Refuse GPU-only methods on a machine without CUDA, before loading anything."""
    import torch

    if method.needs_cuda and (not torch.cuda.is_available() or not device.startswith("cuda")):
        raise UserError(
            f"--method {method.name} needs a CUDA GPU: torchao's packed int4 kernels (tinygemm/mslk) have no CPU "
            "implementation. On CPU use --method intx4-weight (int4 values, int8 storage), int8-weight or int8-dynamic."
        )


def quantize(weights_path: Path, out: Path, method: Method, settings: dict[str, Any], device: str = "cpu") -> None:
    """Load `weights_path` quantized with `method` and save it (config.json holds quantization_config)."""
    import torch
    from transformers import AutoModelForCausalLM, TorchAoConfig

    check_device(method, device)
    config = TorchAoConfig(torchao_config(method, settings))
    model = AutoModelForCausalLM.from_pretrained(
        str(weights_path), dtype=torch.bfloat16 if method.needs_cuda else torch.float32,
        quantization_config=config, device_map=device,
    )
    model.save_pretrained(str(out))

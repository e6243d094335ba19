"""`compress(model, method, out)`: one compressed model folder with its record, optionally registered.

The folder is what `AutoModelForCausalLM.from_pretrained` reads (weights, config.json with
the quantization config for torchao methods, tokenizer, chat template) plus
``compression.json``: method, effective settings, parent reference and hash, sizes,
library versions and timings.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llmops.compress.methods import get_method
from llmops.errors import UserError

log = logging.getLogger(__name__)
RECORD = "compression.json"


@dataclass
class CompressResult:
    out_dir: Path
    record: dict[str, Any]
    registered: str | None = None


def weights_bytes(path: Path) -> int:
    """Bytes of weight files in a model folder (what disk and download cost)."""
    from llmops.eval.footprint import weights_mb

    return int(round(weights_mb(path) * 2**20))


def _versions() -> dict[str, str]:
    import importlib.metadata as md

    out = {}
    for name in ("llmops", "torch", "transformers", "torchao"):
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            pass
    return out


def _full_weights(model, workdir: Path) -> Path:
    """A folder with full weights: the model's own, or an adapter merged into its base."""
    if not model.is_adapter:
        return model.weights_path
    from llmops.models.loading import load_causal_lm

    merged = load_causal_lm(model).merge_and_unload()
    merged.save_pretrained(str(workdir / "merged"))
    return workdir / "merged"


TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja",
                   "tokenizer.model", "vocab.json", "merges.txt", "added_tokens.json")


def _copy_tokenizer(src: Path, out: Path) -> None:
    """The parent's tokenizer files, byte for byte: token-level metrics (perplexity) then
    compare across parent and child (the harness refuses them across different tokenizers)."""
    for name in TOKENIZER_FILES:
        if (src / name).is_file():
            shutil.copyfile(src / name, out / name)
    if not (out / "tokenizer_config.json").exists():
        raise UserError(f"{src}: no tokenizer files to copy into the compressed model")


def _prune(weights: Path, out: Path, method_name: str, settings: dict[str, Any]) -> dict[str, Any]:
    import torch
    from transformers import AutoModelForCausalLM

    from llmops.compress import prune

    model = AutoModelForCausalLM.from_pretrained(str(weights), dtype=torch.float32)
    if method_name == "prune-magnitude":
        masks = prune.magnitude_prune(model, settings["sparsity"])
        torch.save(masks, out.parent / f".{out.name}.masks.pt")
        info = {"measured_sparsity": round(prune.sparsity_of(model), 4)}
    else:
        info = prune.structured_prune(model, settings["fraction"])
    model.save_pretrained(str(out))
    return info


def _recover(out: Path, method_name: str, steps: int, data: str, lr: float, workdir: Path) -> dict[str, Any]:
    """Short full fine-tune of the pruned model (`llmops.train`), pruned weights re-zeroed afterwards."""
    import torch
    import yaml
    from transformers import AutoModelForCausalLM

    from llmops.compress import prune
    from llmops.config import load_recipe
    from llmops.train import run as train_run

    recipe = {
        "recipe": "sft", "description": f"recovery fine-tune after {method_name}",
        "model": {"base": str(out)}, "data": {"train": data, "max_length": 128, "limit": 2000},
        "train": {"max_steps": steps, "batch_size": 8, "lr": lr, "warmup_steps": 0, "log_every": max(1, steps // 5),
                  "eval_every": 0, "seed": 0},
        "output": {"dir": str(workdir / "recovery")},
    }
    path = workdir / "recovery.yaml"
    path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    result = train_run(load_recipe(path, []))
    model = AutoModelForCausalLM.from_pretrained(str(result.final_dir), dtype=torch.float32)
    masks_file = out.parent / f".{out.name}.masks.pt"
    if masks_file.exists():
        prune.apply_masks(model, torch.load(masks_file))
    for f in out.glob("*.safetensors"):
        f.unlink()
    model.save_pretrained(str(out))
    return {"steps": steps, "data": data, "lr": lr, "run_id": result.manifest.get("run_id"),
            "final_metrics": result.metrics, "recipe": recipe}


def compress(
    model_ref: str, method: str, out_dir: str | Path, settings: dict[str, Any] | None = None, device: str = "cpu",
    recover_steps: int = 0, recover_data: str = "builtin:docstrings", recover_lr: float = 1e-3,
    register_as: str | None = None, db_url: str | None = None, lineage_extra: dict[str, Any] | None = None,
) -> CompressResult:
    """Compress `model_ref` with `method` into `out_dir` (replaced if it exists)."""
    from llmops.models.refs import resolve

    spec, effective = get_method(method, settings)
    if recover_steps and spec.kind != "prune":
        raise UserError("--recover-steps applies to pruning; quantized weights are not fine-tuned here")
    if spec.kind == "quantize":
        from llmops.compress.quantize import check_device

        check_device(spec, device)  # refuse before any work
    parent = resolve(model_ref)
    out = Path(out_dir).expanduser().resolve()
    if out.exists():
        shutil.rmtree(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="llmops-compress-", dir=out.parent) as tmp:
        workdir = Path(tmp)
        weights = _full_weights(parent, workdir)
        info: dict[str, Any] = {}
        if spec.kind == "quantize":
            from llmops.compress.quantize import quantize

            quantize(weights, out, spec, effective, device)
        else:
            info = _prune(weights, out, method, effective)
        _copy_tokenizer(parent.tokenizer_path, out)
        recovery = _recover(out, method, recover_steps, recover_data, recover_lr, workdir) if recover_steps else None
        masks = out.parent / f".{out.name}.masks.pt"
        if masks.exists():
            masks.unlink()
    parent_bytes, out_bytes = weights_bytes(parent.weights_path), weights_bytes(out)
    record = {
        "method": method, "kind": spec.kind, "settings": effective, "device": device,
        "parent": {"ref": parent.ref, "sha256": parent.sha256, "registry": parent.source or None},
        "details": info, "recovery": recovery,
        "weights_bytes": {"parent": parent_bytes, "compressed": out_bytes, "ratio": round(out_bytes / parent_bytes, 4)},
        "seconds": round(time.perf_counter() - t0, 2), "versions": _versions(),
    }
    (out / RECORD).write_text(json.dumps(record, indent=1))
    (out / "llmops_model.json").write_text(json.dumps({"kind": "compressed", "parent_ref": parent.ref,
                                                      "compression": method}, indent=2) + "\n")
    registered = _register(register_as, out, parent, record, db_url, lineage_extra) if register_as else None
    log.info("compressed %s with %s: weights %.2f MB -> %.2f MB", parent.ref, method, parent_bytes / 2**20, out_bytes / 2**20)
    return CompressResult(out, record, registered)


def _register(name: str, out: Path, parent, record: dict[str, Any], db_url: str | None,
              extra: dict[str, Any] | None = None) -> str:
    from llmops.registry import api

    lineage: dict[str, Any] = {
        "base_model_ref": parent.ref, "base_model_hash": parent.sha256,
        "compression": {k: record[k] for k in ("method", "settings", "details", "weights_bytes")},
    }
    if record["recovery"]:
        lineage["run_id"] = record["recovery"]["run_id"]
    lineage.update(extra or {})
    if parent.registry_name:
        same = parent.registry_name == name
        lineage["parent_version"] = parent.registry_version if same else f"{parent.registry_name}/{parent.registry_version}"
    mv = api.register_version(name, out, lineage=lineage, tags={"compression": record["method"]}, db_url=db_url,
                              description=f"{record['method']} of {parent.ref}")
    return mv.ref

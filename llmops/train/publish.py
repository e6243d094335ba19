"""After training: per-rank audit records and the model registry entry.

Each process writes ``ranks/rank-K.json``: the data positions it consumed, a digest of
the example indices it saw and a hash of its trainable weights — the evidence that N
processes really were N (disjoint data, identical DDP weights). ``output.register_as``
registers ``final/`` with the lineage the registry contract names.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from llmops.config.loader import LoadedRecipe
from llmops.train.manifest import write_json_atomic


def trainable_sha256(model: torch.nn.Module) -> str:
    """sha256 over the names and float32 bytes of the trainable parameters of a whole
    (unsharded) model; sharded models are hashed from their gathered state dict
    (`llmops.train.sharded`), with the same function and therefore the same result."""
    from llmops.train.sharded import sha256_of

    return sha256_of((name, param) for name, param in model.named_parameters() if param.requires_grad)


def write_rank_record(run_dir: Path, record: dict[str, Any]) -> Path:
    ranks = run_dir / "ranks"
    ranks.mkdir(exist_ok=True)
    path = ranks / f"rank-{record['rank']}.json"
    write_json_atomic(path, record)
    return path


def parent_version(base_ref: str, name: str) -> int | str | None:
    """The registry version the base came from: an int within `name`, else ``OTHER/N``."""
    from llmops.models.refs import parse_ref

    ref = parse_ref(base_ref)
    if ref.kind != "registry":
        return None
    from llmops.registry.api import get_version

    base_name, alias, version = ref.registry_parts
    mv = get_version(base_name, version=version, alias=None if version is not None else alias)
    return mv.version if mv.name == name else f"{mv.name}/{mv.version}"


def register_final(loaded: LoadedRecipe, manifest: dict[str, Any], final: Path) -> str | None:
    """Register `final` under ``output.register_as``; returns ``registry:NAME/N`` or None."""
    recipe = loaded.recipe
    name = recipe.output.register_as
    if not name:
        return None
    from llmops.registry.api import register_version

    lineage = {
        "base_model_ref": manifest.get("base_model_ref"),
        "base_model_hash": manifest.get("base_model_hash"),
        "parent_version": parent_version(recipe.model.adapter or recipe.model.base, name),
        "recipe": loaded.resolved,
        "recipe_hash": loaded.hash,
        "dataset_fingerprints": manifest.get("dataset_fingerprints"),
        "feedback_snapshot_id": manifest.get("feedback_snapshot_id"),
        "run_id": manifest["run_id"],
        "training": {k: manifest.get(k) for k in ("steps_completed", "max_steps", "wall_time_s", "final_metrics",
                                                  "world_size", "mixed_precision", "device") if k in manifest},
    }
    return register_version(name, final, lineage=lineage, tags={"recipe": recipe.recipe}).ref

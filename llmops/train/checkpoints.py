"""Checkpoints that are either complete or invisible.

A checkpoint is written by every process into ``checkpoints/.tmp-step-N`` (model or
trainable weights, optimizer, scheduler, the RNG states of every process, and
``llmops_checkpoint.json`` with the step and the data position), flushed to disk, and
only then renamed to ``checkpoints/step-N`` by the main process. A process killed while
writing leaves a ``.tmp-*`` directory that `latest_checkpoint` never returns and the
next run deletes. `keep_last` prunes the oldest complete checkpoints after each save.

Weights go through ``accelerator.save_state`` so that FSDP and DeepSpeed shard their
states their own way. When some parameters are frozen (LoRA, or a task freezing part of
a model) only the trainable ones are saved: the frozen ones come back from the base
model reference, whose hash the manifest pins.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from llmops.train.faults import fault_point

if TYPE_CHECKING:
    from accelerate import Accelerator

STATE_FILE = "llmops_checkpoint.json"
TRAINABLE_FILE = "trainable_{index}.safetensors"
_STEP_RE = re.compile(r"^step-(\d+)$")


def checkpoint_root(run_dir: Path) -> Path:
    return run_dir / "checkpoints"


def complete_checkpoints(run_dir: Path) -> list[tuple[int, Path]]:
    """Complete checkpoints as (step, path), oldest first."""
    root = checkpoint_root(run_dir)
    if not root.is_dir():
        return []
    found = []
    for child in root.iterdir():
        m = _STEP_RE.match(child.name)
        if m and child.is_dir() and (child / STATE_FILE).is_file():
            found.append((int(m.group(1)), child))
    return sorted(found)


def latest_checkpoint(run_dir: Path) -> Path | None:
    """The newest complete checkpoint, or None."""
    found = complete_checkpoints(run_dir)
    return found[-1][1] if found else None


def remove_incomplete(run_dir: Path) -> list[Path]:
    """Delete checkpoint directories a killed process left half-written."""
    root = checkpoint_root(run_dir)
    removed = []
    if root.is_dir():
        for child in root.iterdir():
            if child.name.startswith(".tmp-"):
                shutil.rmtree(child, ignore_errors=True)
                removed.append(child)
    return removed


def prune(run_dir: Path, keep_last: int) -> list[Path]:
    """Delete all but the `keep_last` newest complete checkpoints.

    Each is first renamed to ``.tmp-pruned-step-N`` (atomic), then deleted: a kill
    mid-deletion leaves a ``.tmp-*`` directory that the next run removes, never a
    ``step-N`` that still looks complete but has lost its weights.
    """
    found = complete_checkpoints(run_dir)
    doomed = [path for _, path in found[: max(0, len(found) - keep_last)]]
    for path in doomed:
        aside = path.with_name(f".tmp-pruned-{path.name}")
        shutil.rmtree(aside, ignore_errors=True)
        os.replace(path, aside)
        fault_point("checkpoint.prune")
        shutil.rmtree(aside, ignore_errors=True)
    return doomed


def _fsync_tree(path: Path) -> None:
    """Flush every file and directory under `path` so that the rename publishes durable data."""
    for dirpath, _, filenames in os.walk(path):
        for name in filenames:
            fd = os.open(os.path.join(dirpath, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        fd = os.open(dirpath, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def save_checkpoint(accelerator: "Accelerator", run_dir: Path, step: int, state: dict[str, Any]) -> Path:
    """Write checkpoint `step` atomically from every process; returns its final path."""
    root = checkpoint_root(run_dir)
    tmp = root / f".tmp-step-{step}"
    final = root / f"step-{step}"
    if accelerator.is_main_process:
        root.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(tmp, ignore_errors=True)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(tmp))
    fault_point("checkpoint.write")
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        (tmp / STATE_FILE).write_text(json.dumps(state, indent=2, sort_keys=True) + "\n")
        _fsync_tree(tmp)
        if final.exists():  # a previous attempt of this very step (resumed run): replace it
            shutil.rmtree(final)
        os.replace(tmp, final)
        dir_fd = os.open(root, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    fault_point("checkpoint.published")
    accelerator.wait_for_everyone()
    return final


def read_state(checkpoint: Path) -> dict[str, Any]:
    return json.loads((checkpoint / STATE_FILE).read_text())


# --------------------------------------------------------- trainable-only model states


def _partially_frozen(model: torch.nn.Module) -> bool:
    flags = {p.requires_grad for p in model.parameters()}
    return flags == {True, False}


def install_trainable_only_hooks(accelerator: "Accelerator") -> None:
    """Make save_state/load_state keep only trainable parameters of partially frozen models.

    FSDP and DeepSpeed keep their own formats (the hooks step aside for them).
    """
    from accelerate.utils import DistributedType
    from safetensors.torch import load_file, save_file

    sharded = accelerator.distributed_type in (DistributedType.FSDP, DistributedType.DEEPSPEED)

    def save_hook(models: list[torch.nn.Module], weights: list[dict], output_dir: str) -> None:
        if sharded:
            return
        for index in reversed(range(len(models))):
            model = accelerator.unwrap_model(models[index])
            if not _partially_frozen(model):
                continue
            tensors = {n: p.detach().cpu().contiguous() for n, p in model.named_parameters() if p.requires_grad}
            if accelerator.is_main_process:
                save_file(tensors, os.path.join(output_dir, TRAINABLE_FILE.format(index=index)))
            weights.pop(index)

    def load_hook(models: list[torch.nn.Module], input_dir: str) -> None:
        if sharded:
            return
        for index in reversed(range(len(models))):
            path = os.path.join(input_dir, TRAINABLE_FILE.format(index=index))
            if not os.path.exists(path):
                continue
            model = accelerator.unwrap_model(models[index])
            saved = load_file(path)
            params = dict(model.named_parameters())
            expected = {n for n, p in params.items() if p.requires_grad}
            if set(saved) != expected:
                missing, extra = sorted(expected - set(saved)), sorted(set(saved) - expected)
                raise RuntimeError(
                    f"{input_dir}: trainable parameters differ from the checkpoint "
                    f"(missing {missing[:3]}, unexpected {extra[:3]})"
                )
            with torch.no_grad():
                for name, tensor in saved.items():
                    params[name].copy_(tensor)
            models.pop(index)

    accelerator.register_save_state_pre_hook(save_hook)
    accelerator.register_load_state_pre_hook(load_hook)

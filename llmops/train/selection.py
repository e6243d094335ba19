"""Run length by epochs, best-checkpoint selection and early stopping for the engine.

Preference runs on a few hundred pairs over-fit within an epoch or two: the policy's
training accuracy goes to 1 while held-out accuracy falls. So the engine can

- size a run in **epochs** (``train.epochs``) instead of optimizer steps;
- watch one **validation metric** (``train.select_best: eval_reward_accuracy``), keep the
  trainable weights of the best validation so far in ``RUN/best/`` (written atomically,
  so a resumed run continues with the same best), and save *those* as ``final/``;
- **stop early** (``train.early_stopping.patience``) after that many validations
  without an improvement larger than ``min_delta``.

Only trainable parameters are kept (a LoRA adapter: kilobytes to megabytes; a full
fine-tune: one copy of the weights on disk). FSDP and DeepSpeed shard parameters, so
selection is refused there rather than keeping a shard.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from llmops.errors import UserError

log = logging.getLogger(__name__)

BEST_DIR = "best"
_WEIGHTS = "trainable.safetensors"
_STATE = "selection.json"


def steps_for_epochs(epochs: float, batches_per_epoch: int, grad_accum: int) -> int:
    """Optimizer steps that consume `epochs` passes of `batches_per_epoch` micro-batches (at least 1)."""
    return max(1, math.ceil(epochs * batches_per_epoch / grad_accum))


def direction(metric: str, mode: str) -> str:
    """`min` or `max` for `metric` (auto: losses are minimised, everything else maximised)."""
    if mode != "auto":
        return mode
    return "min" if "loss" in metric else "max"


@dataclass
class SelectionState:
    """What survives a resume: the best value, when it was seen, and the patience used up."""

    metric: str
    mode: str
    best: float | None = None
    best_step: int | None = None
    bad_evals: int = 0
    stopped_early_at: int | None = None
    best_metrics: dict[str, float] | None = None
    history: list[tuple[int, float]] | None = None


class BestSelector:
    """Tracks `train.select_best` / `train.early_stopping` over the engine's validations."""

    def __init__(self, cfg: Any, run_dir: Path) -> None:
        self.metric: str = cfg.select_best
        self.patience: int | None = cfg.early_stopping.patience if cfg.early_stopping else None
        self.min_delta: float = cfg.early_stopping.min_delta if cfg.early_stopping else 0.0
        self.dir = run_dir / BEST_DIR
        self.state = SelectionState(self.metric, direction(self.metric, cfg.select_mode), history=[])

    @classmethod
    def from_config(cls, cfg: Any, run_dir: Path) -> "BestSelector | None":
        return cls(cfg, run_dir) if cfg.select_best else None

    # ---------------------------------------------------------------- decisions

    def improves(self, value: float) -> bool:
        best = self.state.best
        if best is None:
            return True
        gain = (best - value) if self.state.mode == "min" else (value - best)
        return gain > self.min_delta if self.patience is not None else gain > 0

    def observe(self, step: int, metrics: dict[str, float], model: torch.nn.Module, is_main: bool) -> bool:
        """Record one validation; keeps the weights when it is the best so far. Returns True to stop."""
        if self.metric not in metrics:
            known = ", ".join(sorted(k for k in metrics if k.startswith("eval_"))) or "none"
            raise UserError(f"train.select_best: this task logs no `{self.metric}` (validation metrics: {known})")
        value = float(metrics[self.metric])
        self.state.history.append((step, value))
        if self.improves(value):
            self.state.best, self.state.best_step, self.state.bad_evals = value, step, 0
            self.state.best_metrics = dict(metrics)
            if is_main:
                self._save_weights(model)
            log.info("step %d: best %s so far (%.4f)", step, self.metric, value)
        else:
            self.state.bad_evals += 1
        if is_main:
            self._write_state()
        if self.patience is not None and self.state.bad_evals >= self.patience:
            self.state.stopped_early_at = step
            if is_main:
                self._write_state()
            log.info("early stopping at step %d: %s has not improved on %.4f (step %s) for %d validations",
                     step, self.metric, self.state.best, self.state.best_step, self.patience)
            return True
        return False

    # ---------------------------------------------------------------- persistence

    def _save_weights(self, model: torch.nn.Module) -> None:
        from safetensors.torch import save_file

        tensors = {n: p.detach().to("cpu", copy=True).contiguous() for n, p in model.named_parameters() if p.requires_grad}
        tmp = self.dir.with_name(self.dir.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        save_file(tensors, str(tmp / _WEIGHTS))
        (tmp / _STATE).write_text(json.dumps(asdict(self.state)) + "\n")
        if self.dir.exists():
            shutil.rmtree(self.dir)
        os.replace(tmp, self.dir)

    def _write_state(self) -> None:
        if self.dir.is_dir():
            tmp = self.dir / (_STATE + ".tmp")
            tmp.write_text(json.dumps(asdict(self.state)) + "\n")
            os.replace(tmp, self.dir / _STATE)

    def restore(self, saved: dict[str, Any] | None) -> None:
        """Continue a resumed run with the state its checkpoint recorded."""
        if saved:
            saved = dict(saved)
            saved["history"] = [tuple(h) for h in saved.get("history") or []]
            self.state = SelectionState(**saved)

    def load_best_into(self, model: torch.nn.Module) -> dict[str, Any]:
        """Put the best validation's trainable weights back into `model`; returns what was chosen."""
        from safetensors.torch import load_file

        path = self.dir / _WEIGHTS
        if self.state.best_step is None or not path.is_file():
            raise UserError(f"train.select_best: no validation recorded a `{self.metric}` (is there validation data?)")
        tensors = load_file(str(path))
        params = dict(model.named_parameters())
        missing = [n for n in tensors if n not in params]
        if missing:
            raise RuntimeError(f"{path}: parameters not in the model: {missing[:3]}")
        with torch.no_grad():
            for name, value in tensors.items():
                params[name].copy_(value.to(params[name].device, params[name].dtype))
        return self.summary()

    def summary(self) -> dict[str, Any]:
        return {"metric": self.metric, "mode": self.state.mode, "best": self.state.best,
                "best_step": self.state.best_step, "stopped_early_at": self.state.stopped_early_at,
                "patience": self.patience, "history": [list(h) for h in self.state.history or []]}


def check_supported(selector: BestSelector | None, distributed_type: Any, has_validation: bool) -> None:
    if selector is None:
        return
    if not has_validation:
        raise UserError("train.select_best needs validation data (data.validation or data.validation_split > 0)")
    if str(distributed_type).split(".")[-1] in ("FSDP", "DEEPSPEED"):
        raise UserError("train.select_best keeps full trainable weights; it is not supported with FSDP/DeepSpeed "
                        "sharding yet (use checkpoint_every and pick a checkpoint)")

"""Step statistics: what one accumulation window and one logging interval add up to.

Everything is kept as local (this process) sums; the engine reduces them across
processes only at logging time, so a step costs no extra collective operation.
"""

from __future__ import annotations

import resource
from dataclasses import dataclass, field
from typing import Any

import torch


@dataclass
class WindowStats:
    """Local sums over one accumulation window."""

    loss_sum: torch.Tensor
    units: int
    metrics: dict[str, torch.Tensor] = field(default_factory=dict)


@dataclass
class Interval:
    """Sums since the last logging step."""

    loss_sum: float | torch.Tensor = 0.0
    units: int = 0
    metrics: dict[str, torch.Tensor] = field(default_factory=dict)
    seconds: float = 0.0
    grad_norm: float | None = None
    lr: float = 0.0

    def add(self, stats: WindowStats, seconds: float) -> None:
        self.loss_sum = self.loss_sum + stats.loss_sum
        self.units += stats.units
        for k, v in stats.metrics.items():
            self.metrics[k] = self.metrics.get(k, 0.0) + v
        self.seconds += seconds


def flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` → ``{"a.b": 1}`` (tracker configs, recipe diffs)."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, f"{key}."))
        else:
            out[key] = v
    return out


def peak_memory_mb() -> float:
    """Peak allocated GPU memory, or the process's peak RSS on CPU."""
    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def as_float(value: torch.Tensor | float) -> float:
    return float(value.detach().float().item()) if isinstance(value, torch.Tensor) else float(value)

"""Objective values of one finished trial, read from its run (manifest, metrics.jsonl) and evaluation."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from llmops.errors import DataError


def peak_memory_mb(run_dir: Path) -> float | None:
    """Highest peak memory any logged training step reported (metrics.jsonl)."""
    path = Path(run_dir) / "metrics.jsonl"
    if not path.is_file():
        return None
    peaks = [r.get("peak_mem_mb") for r in map(json.loads, path.read_text().splitlines()) if r.get("kind") == "train"]
    peaks = [p for p in peaks if p is not None]
    return max(peaks) if peaks else None


def run_measurements(manifest: dict[str, Any], run_dir: Path, price_per_device_hour: float) -> dict[str, float]:
    """eval_loss, wall_time_s, tokens_per_s, peak_mem_mb, device_hours and cost of a completed run."""
    final = manifest.get("final_metrics", {})
    unit_rate = next((v for k, v in manifest.items() if k.endswith("_per_s") and isinstance(v, (int, float))), None)
    wall = float(manifest.get("wall_time_s") or 0.0)
    devices = int(manifest.get("world_size") or 1)
    hours = wall / 3600 * devices
    out = {"wall_time_s": wall, "device_hours": hours, "cost": hours * price_per_device_hour}
    if final.get("eval_loss") is not None:
        out["eval_loss"] = float(final["eval_loss"])
    if unit_rate is not None:
        out["tokens_per_s"] = float(unit_rate)
    peak = peak_memory_mb(run_dir)
    if peak is not None:
        out["peak_mem_mb"] = peak
    return out


def objective_values(names: list[str], measured: dict[str, float]) -> list[float]:
    """Values in the study's objective order; a missing one is an error naming it."""
    missing = [n for n in names if n not in measured]
    if missing:
        hint = " (set data.validation_split > 0 or data.validation)" if "eval_loss" in missing else ""
        raise DataError(f"trial did not produce objective(s) {', '.join(missing)}{hint}; measured: {sorted(measured)}")
    return [float(measured[n]) for n in names]

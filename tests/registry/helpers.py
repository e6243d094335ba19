"""Builders for fake model and evaluation result directories."""

from __future__ import annotations

import json
from pathlib import Path


def make_model_dir(path: Path, content: str = "weights") -> Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / "config.json").write_text(json.dumps({"model_type": "llama", "tag": content}))
    (path / "model.safetensors").write_text(content)
    return path


def make_eval_dir(path: Path, suite: str, scores: dict[str, float], per_sample: dict[str, list[float]] | None = None):
    """An evaluation result directory in the harness's contract format."""
    path.mkdir(parents=True, exist_ok=True)
    metrics = {m: {"score": s, "ci_low": s - 0.01, "ci_high": s + 0.01} for m, s in scores.items()}
    (path / "results.json").write_text(json.dumps({"suite": suite, "metrics": metrics,
                                                   "provenance": {"suite": suite}}))
    rows = []
    n = len(next(iter(per_sample.values()))) if per_sample else 0
    for i in range(n):
        rows.append({"id": str(i), "metrics": {m: v[i] for m, v in per_sample.items()}})
    (path / "samples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path

"""Builders for fake model and evaluation result directories."""

from __future__ import annotations

import json
from pathlib import Path


def make_model_dir(path: Path, content: str = "weights") -> Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / "config.json").write_text(json.dumps({"model_type": "llama", "tag": content}))
    (path / "model.safetensors").write_text(content)
    return path


def make_eval_dir(path: Path, suite: str, scores: dict[str, float], per_sample: dict[str, list[float]] | None = None,
                  model_hash: str | None = None):
    """An evaluation result directory in the harness's contract format, of the model with `model_hash`."""
    path.mkdir(parents=True, exist_ok=True)
    metrics = {m: {"score": s, "ci_low": s - 0.01, "ci_high": s + 0.01} for m, s in scores.items()}
    (path / "results.json").write_text(json.dumps({"suite": suite, "metrics": metrics,
                                                   "provenance": {"suite": suite, "artifact_hash": model_hash}}))
    rows = []
    n = len(next(iter(per_sample.values()))) if per_sample else 0
    for i in range(n):
        rows.append({"id": str(i), "metrics": {m: v[i] for m, v in per_sample.items()}})
    (path / "samples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def make_key(db_url: str, role: str, name: str | None = None) -> str:
    """A feedback-store API key (the registry CLI authenticates with these)."""
    from llmops.db import session_factory
    from llmops.db.schema import ensure_all
    from llmops.feedback.auth import create_key

    ensure_all(db_url)
    with session_factory(db_url)() as s, s.begin():
        return create_key(s, role, name).token


def admin():
    """An in-process admin principal (what the CLI derives from an admin key)."""
    from llmops.registry.governance import Principal

    return Principal("test-admin", "admin")

"""Result cache: raw model outputs keyed by what determines them.

The key hashes the model (weights, config, tokenizer), the suite (data fingerprint,
prompts, generation parameters, metrics — not the batch size, which does not change
greedy fp32 outputs), the backend and the dtype. Only raw outputs are cached; scores
are recomputed on every run, which is cheap and keeps metric fixes effective.
Entries are written atomically, so concurrent runs at worst compute twice.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from llmops.settings import llmops_home


def cache_dir() -> Path:
    path = llmops_home() / "eval-cache"
    path.mkdir(parents=True, exist_ok=True)
    return path


def cache_key(**parts: Any) -> str:
    canonical = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def load(key: str) -> dict[str, Any] | None:
    path = cache_dir() / f"{key}.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def store(key: str, payload: dict[str, Any]) -> Path:
    target = cache_dir() / f"{key}.json"
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-", suffix=".json")
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(payload, fh)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target

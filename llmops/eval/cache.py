"""Result cache: raw model outputs keyed by what determines them.

The key (built by `llmops.eval.fingerprints.output_cache_key`) hashes what determines the raw
outputs: the model (weights, config, tokenizer), the rendered requests, the generation
settings, the backend and the versions of the libraries it runs on, the device, the
dtype and — except for fp32 greedy decoding or scoring, which are batch invariant — the
batch size. It leaves out the metrics: only raw outputs are cached and scores are
recomputed on every run, so adding a metric or fixing one never re-runs the model.
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

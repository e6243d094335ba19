"""Deterministic preference pairs built from the built-in docstring task (no human needed).

For each docstring prompt, ``chosen`` is its real first sentence and ``rejected`` the same
words in a seeded random order: the content is identical, only fluency differs, so a
small reward model learns the preference in a minute on a CPU and DPO has a clear target.
This is what the shipped `reward`/`dpo` recipes train on out of the box
(``data.train: builtin:docstring-prefs``); real runs use `llmops feedback export` output.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any


def _scramble(text: str, rng: random.Random) -> str | None:
    words = text.split()
    if len(words) < 3:
        return None
    for _ in range(5):
        shuffled = words[:]
        rng.shuffle(shuffled)
        if shuffled != words:
            return " ".join(shuffled)
    return None


def docstring_preferences(split: str = "train", limit: int | None = None, seed: int = 0) -> list[dict[str, Any]]:
    """Preference rows ``{prompt, chosen, rejected, margin, source}`` from `builtin:docstrings`."""
    from llmops.data import load_records

    rng = random.Random(f"{seed}:{split}")
    rows = []
    for rec in load_records("builtin:docstrings", split=split):
        rejected = _scramble(rec["completion"], rng)
        if rejected is None:
            continue
        rows.append(
            {"prompt": rec["prompt"], "chosen": rec["completion"], "rejected": rejected, "margin": 1.0,
             "source": rec.get("source")}
        )
        if limit is not None and len(rows) >= limit:
            break
    return rows


def write_jsonl(rows: list[dict[str, Any]], path: str | Path) -> Path:
    """Write rows as JSONL (atomically) and return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    tmp.replace(path)
    return path

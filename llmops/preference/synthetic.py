"""Deterministic preference pairs built from the built-in docstring task (no human needed).

For each docstring prompt, ``chosen`` is its real first sentence and ``rejected`` the first
sentence of *another* docstring of the same split (seeded choice): fluent but off-topic.
A reward model must therefore judge relevance to the prompt, not fluency. This is what
the shipped `reward`/`dpo` recipes train on out of the box; real runs use
`llmops feedback export` output instead.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any


def docstring_preferences(split: str = "train", limit: int | None = None, seed: int = 0) -> list[dict[str, Any]]:
    """Preference rows ``{prompt, chosen, rejected, margin, source}`` from `builtin:docstrings`."""
    from llmops.data import load_records

    records = load_records("builtin:docstrings", split=split, limit=limit)
    if len(records) < 2:
        return []
    rng = random.Random(f"{seed}:{split}")
    rows = []
    for i, rec in enumerate(records):
        j = rng.randrange(len(records) - 1)
        j = j + 1 if j >= i else j
        if records[j]["completion"].strip() == rec["completion"].strip():
            continue
        rows.append(
            {"prompt": rec["prompt"], "chosen": rec["completion"], "rejected": records[j]["completion"],
             "margin": 1.0, "source": rec.get("source")}
        )
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

"""Train and validation records for a recipe's ``data`` section, with their fingerprints.

Resolution of the validation set, in order: ``data.validation`` when given; the
``validation`` split of a ``builtin:`` dataset; otherwise ``data.validation_split`` of
the training records, held out with a seeded shuffle (so it never changes between a run
and its resume). ``validation_split: 0`` with no validation file means no validation.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llmops.config.schema import DataSection
from llmops.errors import DataError

# Synthetic pairs from the built-in docstring task (`llmops.data.builtin_prefs`): what the
# shipped reward/DPO recipes train on out of the box, before any human feedback exists.
SYNTHETIC_DOCSTRING_PAIRS = "builtin:docstring-prefs"

_FORMATS_FOR = {
    "sft": {"prompt_completion", "chat", "text"},
    "distill": {"prompt_completion", "chat", "text"},
}


@dataclass
class Splits:
    train: list[dict[str, Any]]
    validation: list[dict[str, Any]] | None
    fingerprints: dict[str, str] = field(default_factory=dict)
    format: str = "auto"
    feedback_snapshot_id: str | None = None


def load_splits(data: DataSection, seed: int, recipe_name: str) -> Splits:
    """Load, split and fingerprint the records; checks the format suits `recipe_name`."""
    from llmops.data import dataset_fingerprint, detect_format, load_records

    assert data.train is not None  # the schema requires it for every recipe that trains on data
    if data.train == SYNTHETIC_DOCSTRING_PAIRS:
        return _synthetic_preference_splits(data, seed)
    builtin = data.train.startswith("builtin:")
    train = load_records(data.train, split="train" if builtin else None)
    validation: list[dict[str, Any]] | None = None
    if data.validation:
        validation = load_records(data.validation, split="validation" if data.validation.startswith("builtin:") else None)
    elif data.validation_split > 0 and builtin:
        validation = load_records(data.train, split="validation")
    elif data.validation_split > 0:
        train, validation = hold_out(train, data.validation_split, seed, key=_prompt_key)
    if data.limit is not None:
        train = train[: data.limit]
    if not train:
        raise DataError(f"data.train: {data.train} has no records")
    fmt = detect_format(train)
    if data.format != "auto" and data.format != fmt:
        raise DataError(f"data.format: recipe says `{data.format}` but {data.train} looks like `{fmt}`")
    allowed = _FORMATS_FOR.get(recipe_name)
    if allowed is not None and fmt not in allowed:
        raise DataError(f"data.train: {data.train} is `{fmt}` data; recipe `{recipe_name}` needs one of {sorted(allowed)}")
    fingerprints = {"train": dataset_fingerprint(train)}
    if validation:
        fingerprints["validation"] = dataset_fingerprint(validation)
    return Splits(train, validation or None, fingerprints, fmt, feedback_snapshot_id(data.train))


def _prompt_key(record: dict[str, Any]) -> str | None:
    """Group key for the hold-out: the prompt of a preference record (several pairs share one)."""
    if "chosen" in record and "rejected" in record and "prompt" in record:
        return json.dumps(record["prompt"], sort_keys=True)
    return None


def hold_out(records: list[dict[str, Any]], fraction: float, seed: int, key=None) -> tuple[list, list]:
    """Seeded hold-out of `fraction` of the groups (records with the same `key` stay together).

    Preference exports give many pairs per prompt; splitting pairs at random would put the
    same prompt on both sides and validation accuracy would measure memorisation.
    """
    if len(records) < 2:
        return records, []
    keys = [(key(r) if key else None) or f"#{i}" for i, r in enumerate(records)]
    groups = list(dict.fromkeys(keys))
    if len(groups) < 2:
        return records, []
    random.Random(seed).shuffle(groups)
    n_val = max(1, int(round(len(groups) * fraction)))
    held = set(groups[:n_val])
    return [r for r, k in zip(records, keys) if k not in held], [r for r, k in zip(records, keys) if k in held]


def feedback_snapshot_id(spec: str) -> str | None:
    """Snapshot id of a feedback export (its ``.meta.json`` next to the data), if any."""
    if spec.startswith("builtin:"):
        return None
    path = Path(spec)
    for meta in (Path(f"{path}.meta.json"), path.with_suffix(".meta.json")):
        if meta.is_file():
            try:
                return json.loads(meta.read_text()).get("snapshot_id")
            except ValueError:
                return None
    return None


def _synthetic_preference_splits(data: DataSection, seed: int) -> Splits:
    """`builtin:docstring-prefs`: train/validation follow the docstring task's own splits."""
    from llmops.data import dataset_fingerprint
    from llmops.data.builtin_prefs import docstring_preferences

    train = docstring_preferences("train", seed=seed)
    if data.limit is not None:
        train = train[: data.limit]
    validation = None
    if data.validation is None and data.validation_split > 0:
        n_val = max(1, int(round(len(train) * data.validation_split)))
        validation = docstring_preferences("validation", limit=n_val * 2, seed=seed)[:n_val]
    elif data.validation is not None:
        raise DataError(f"data.validation: not supported with {SYNTHETIC_DOCSTRING_PAIRS} (it has its own split)")
    fingerprints = {"train": dataset_fingerprint(train)}
    if validation:
        fingerprints["validation"] = dataset_fingerprint(validation)
    return Splits(train, validation, fingerprints, "preference", None)

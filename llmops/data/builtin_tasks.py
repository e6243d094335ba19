"""Built-in datasets, generated offline at run time.

``builtin:docstrings``: summarise a Python standard-library docstring into its first
sentence. Records are ``{"prompt", "completion", "source"}``. The docstrings come from
`llmops.data.corpus.TASK_MODULES`, disjoint from the built-in models' pretraining
modules. The split of a record is a hash of its source name, so it is stable across
runs and Python versions (a record never moves between train and test).
"""

from __future__ import annotations

import hashlib

from llmops.errors import DataError

SPLITS = ("train", "validation", "test")
_SPLIT_BUCKETS = {"test": range(0, 10), "validation": range(10, 20), "train": range(20, 100)}  # 10/10/80 %


def split_of(source: str) -> str:
    bucket = int(hashlib.sha256(source.encode()).hexdigest()[:8], 16) % 100
    return next(name for name, r in _SPLIT_BUCKETS.items() if bucket in r)


def docstrings(split: str) -> list[dict[str, str]]:
    from llmops.data.corpus import summarisation_pairs, task_docstrings

    if split not in SPLITS:
        raise DataError(f"builtin:docstrings has no split `{split}` (splits: {', '.join(SPLITS)})")
    return [row for row in summarisation_pairs(task_docstrings()) if split_of(row["source"]) == split]


def _arithmetic(split: str) -> list[dict[str, str]]:
    from llmops.data.builtin_arithmetic import _SPLIT_SEEDS, arithmetic

    if split not in _SPLIT_SEEDS:
        raise DataError(f"builtin:arithmetic has no split `{split}` (splits: {', '.join(_SPLIT_SEEDS)})")
    return arithmetic(split)


BUILTIN_DATASETS = {"docstrings": docstrings, "arithmetic": _arithmetic}


def load_builtin(name: str, split: str) -> list[dict]:
    if name not in BUILTIN_DATASETS:
        known = ", ".join(f"builtin:{n}" for n in BUILTIN_DATASETS)
        raise DataError(f"unknown built-in dataset `builtin:{name}` (known: {known})")
    return BUILTIN_DATASETS[name](split)

"""Read records (one dict per sample) from files, `datasets` directories and built-in tasks.

Every loader returns plain ``list[dict]``: small enough for the fine-tuning datasets
this framework targets, and trivially fingerprinted, inspected and shuffled. Errors
name the file and line (JSONL/CSV) or item index (JSON) of the bad row.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from llmops.errors import DataError

SUFFIXES = (".jsonl", ".json", ".csv", ".parquet")


def load_records(spec: str | Path, split: str | None = None, limit: int | None = None) -> list[dict[str, Any]]:
    """Load records from `spec`: a file, a ``datasets.save_to_disk`` directory, ``builtin:NAME``
    or ``hub:ID[:CONFIG]`` (a HF Hub dataset: from the local cache, downloaded only with
    ``LLMOPS_ALLOW_DOWNLOADS=1``).

    `split` selects a split of a built-in task, a hub dataset or a saved ``DatasetDict``
    (default ``train``); single files have no splits and ignore it. `limit` keeps the first N.
    """
    if limit is not None and limit <= 0:
        raise DataError(f"limit must be > 0, got {limit}")
    spec_str = str(spec)
    if spec_str.startswith("builtin:"):
        from llmops.data.builtin_tasks import load_builtin

        records = load_builtin(spec_str.split(":", 1)[1], split or "train")
    elif spec_str.startswith("hub:"):
        records = _load_hub_dataset(spec_str[4:], split or "train")
    else:
        path = Path(spec_str).expanduser()
        if path.is_dir():
            records = _load_saved_dataset(path, split)
        elif not path.exists():
            raise DataError(f"{path}: no such file or directory")
        elif path.suffix == ".jsonl":
            records = _load_jsonl(path, limit)
        elif path.suffix == ".json":
            records = _load_json(path, split)
        elif path.suffix == ".csv":
            records = _load_csv(path, limit)
        elif path.suffix == ".parquet":
            records = _load_parquet(path)
        else:
            raise DataError(f"{path}: unsupported file type `{path.suffix}` (use {', '.join(SUFFIXES)} or a datasets directory)")
    if not records:
        raise DataError(f"{spec_str}: no records")
    return records[:limit] if limit else records


def iter_jsonl(path: Path) -> Iterator[tuple[int, dict]]:
    """(line number, object) for each non-blank line; bad lines raise DataError naming file:line."""
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{path}:{lineno}: invalid JSON ({exc.msg} at column {exc.colno})") from None
            if not isinstance(row, dict):
                raise DataError(f"{path}:{lineno}: expected a JSON object, got {type(row).__name__}")
            yield lineno, row


def _load_jsonl(path: Path, limit: int | None) -> list[dict]:
    records: list[dict] = []
    for _, row in iter_jsonl(path):
        records.append(row)
        if limit and len(records) >= limit:
            break
    return records


def _load_json(path: Path, split: str | None) -> list[dict]:
    """A JSON array of objects, or an object of split name -> array."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}:{exc.lineno}: invalid JSON ({exc.msg} at column {exc.colno})") from None
    if isinstance(data, dict):
        splits = {k: v for k, v in data.items() if isinstance(v, list)}
        key = split or ("train" if "train" in splits else next(iter(splits), None) if len(splits) == 1 else None)
        if key not in splits:
            raise DataError(f"{path}: expected an array of objects or a split name -> array mapping with split `{split or 'train'}` (found {sorted(splits)})")
        data = splits[key]
    if not isinstance(data, list):
        raise DataError(f"{path}: expected a JSON array of objects, got {type(data).__name__}")
    for i, row in enumerate(data):
        if not isinstance(row, dict):
            raise DataError(f"{path}: item {i}: expected an object, got {type(row).__name__}")
    return data


def _load_csv(path: Path, limit: int | None) -> list[dict]:
    records: list[dict] = []
    with path.open(encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        if not reader.fieldnames:
            raise DataError(f"{path}:1: empty CSV (no header row)")
        try:
            for row in reader:
                if None in row or any(v is None for v in row.values()):
                    raise DataError(
                        f"{path}:{reader.line_num}: expected {len(reader.fieldnames)} fields "
                        f"({', '.join(reader.fieldnames)})"
                    )
                records.append(row)
                if limit and len(records) >= limit:
                    break
        except csv.Error as exc:
            raise DataError(f"{path}:{reader.line_num}: {exc}") from None
    return records


def _load_parquet(path: Path) -> list[dict]:
    import pyarrow.parquet as pq

    try:
        return pq.read_table(path).to_pylist()
    except Exception as exc:  # noqa: BLE001 - pyarrow raises several types for corrupt files
        raise DataError(f"{path}: unreadable Parquet file ({exc})") from None


def _load_hub_dataset(spec: str, split: str) -> list[dict]:
    """``hub:ID`` or ``hub:ID:CONFIG``: offline from the HF datasets cache unless downloads are allowed."""
    from llmops.settings import downloads_allowed

    name, _, config = spec.partition(":")
    if not name:
        raise DataError("hub: dataset reference is empty (use hub:ID or hub:ID:CONFIG, e.g. hub:openai/gsm8k:main)")
    import datasets

    offline = not downloads_allowed()
    was_offline = datasets.config.HF_HUB_OFFLINE
    try:
        datasets.config.HF_HUB_OFFLINE = was_offline or offline  # read at call time: never fetch unless allowed
        ds = datasets.load_dataset(name, config or None, split=split)
    except Exception as exc:  # noqa: BLE001 - datasets raises many types for a missing dataset
        hint = (" It is not in the local HF datasets cache and downloads are off: set LLMOPS_ALLOW_DOWNLOADS=1 "
                "to fetch it.") if offline else ""
        raise DataError(f"hub:{spec}: cannot load split `{split}` ({type(exc).__name__}: {str(exc)[:200]}).{hint}") from None
    finally:
        datasets.config.HF_HUB_OFFLINE = was_offline
    return [dict(row) for row in ds]


def _load_saved_dataset(path: Path, split: str | None) -> list[dict]:
    from datasets import Dataset, DatasetDict, load_from_disk

    try:
        ds = load_from_disk(str(path))
    except FileNotFoundError:
        raise DataError(f"{path}: a directory but not a dataset saved with datasets.save_to_disk") from None
    if isinstance(ds, DatasetDict):
        key = split or ("train" if "train" in ds else next(iter(ds)) if len(ds) == 1 else None)
        if key not in ds:
            raise DataError(f"{path}: no split `{split or 'train'}` (splits: {', '.join(ds)})")
        ds = ds[key]
    assert isinstance(ds, Dataset)
    return ds.to_list()

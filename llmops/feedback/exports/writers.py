"""Write a snapshot's stored row texts as JSONL, Parquet or a `datasets.save_to_disk` folder.

Files are made only from the stored JSON texts with a fixed Arrow schema per format, so
the same snapshot written twice (by the same library versions) gives the same bytes.
Each write is atomic (a temporary sibling, then a rename) and leaves ``<out>.meta.json``
with the provenance next to it (where `llmops.data.splits.feedback_snapshot_id` finds it).
"""

from __future__ import annotations

import json
import os
import shutil
from importlib import metadata
from pathlib import Path
from typing import Any

from llmops.feedback.errors import Invalid
from llmops.feedback.exports.formats import schema_for

OUTPUTS = ("jsonl", "parquet", "hf-dataset")
LIBRARIES = ("llmops", "datasets", "pyarrow", "trl", "transformers", "sqlalchemy")


def output_for(path: str | os.PathLike, given: str | None) -> str:
    """The output kind: `given`, else from the suffix (.parquet → parquet, none → hf-dataset, else jsonl)."""
    if given is not None:
        if given not in OUTPUTS:
            raise Invalid(f"unknown output {given!r}; choose one of {', '.join(OUTPUTS)}", field="as")
        return given
    suffix = Path(path).suffix.lower()
    return "parquet" if suffix == ".parquet" else "hf-dataset" if suffix == "" else "jsonl"


def library_versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name in LIBRARIES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def _table(texts: list[str], fmt: str, params: dict[str, Any]):
    import pyarrow as pa

    return pa.Table.from_pylist([json.loads(t) for t in texts], schema=schema_for(fmt, params))


def _write_parquet(texts: list[str], fmt: str, params: dict[str, Any], tmp: Path) -> None:
    import pyarrow.parquet as pq

    pq.write_table(_table(texts, fmt, params), tmp, compression="zstd")


def _write_hf(texts: list[str], fmt: str, params: dict[str, Any], tmp: Path, snapshot: str) -> None:
    import datasets

    table = _table(texts, fmt, params)
    info = datasets.DatasetInfo(description=f"llmops feedback export {snapshot} ({fmt})",
                                features=datasets.Features.from_arrow_schema(table.schema))
    # An explicit fingerprint: otherwise `datasets` may pick a random one and the folder's bytes would vary.
    ds = datasets.Dataset(table, info=info, fingerprint=snapshot.removeprefix("fbs_"))
    bars = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()
    try:  # one shard even when empty: a folder of zero shards cannot be loaded back
        ds.save_to_disk(str(tmp), num_shards=1)
    finally:
        if bars:
            datasets.enable_progress_bars()


def _replace_dir(tmp: Path, out: Path) -> None:
    if out.exists():
        if not out.is_dir() or (any(out.iterdir()) and not (out / "state.json").is_file()):
            shutil.rmtree(tmp, ignore_errors=True)
            raise Invalid(f"{out} exists and is not a datasets folder; choose another --out", field="out")
        old = out.with_name(out.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(out, old)
        os.replace(tmp, out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, out)


def write(texts: list[str], fmt: str, params: dict[str, Any], out_path: str | os.PathLike, output: str,
          provenance: dict[str, Any]) -> tuple[Path, Path]:
    """Write the rows and ``<out>.meta.json``; returns (data path, meta path)."""
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True) if tmp.is_dir() else tmp.unlink(missing_ok=True)
    if output == "jsonl":
        tmp.write_text("".join(t + "\n" for t in texts), encoding="utf-8")
        os.replace(tmp, out)
    elif output == "parquet":
        _write_parquet(texts, fmt, params, tmp)
        os.replace(tmp, out)
    elif output == "hf-dataset":
        _write_hf(texts, fmt, params, tmp, provenance["snapshot_id"])
        _replace_dir(tmp, out)
    else:
        raise Invalid(f"unknown output {output!r}; choose one of {', '.join(OUTPUTS)}", field="as")
    meta = out.with_name(out.name + ".meta.json")
    meta.write_text(json.dumps({**provenance, "output": output, "library_versions": library_versions()},
                               indent=2, sort_keys=True) + "\n")
    return out, meta

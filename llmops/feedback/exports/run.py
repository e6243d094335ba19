"""Export end to end: read in a pinned snapshot, record it, write the file from the stored rows.

The read runs in one transaction-wide snapshot (``REPEATABLE READ READ ONLY`` on
PostgreSQL, a WAL read transaction on SQLite) that never holds the write lock, so a
live server keeps writing; the snapshot is then recorded in a short write transaction.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llmops.feedback.exports import snapshots, writers
from llmops.feedback.exports.build import Export, build, export_params
from llmops.feedback.exports.filters import ExportFilters


@dataclass
class ExportResult:
    snapshot_id: str
    format: str
    n_rows: int
    agreement: dict[str, Any]
    params: dict[str, Any]
    rows: list[dict[str, Any]] = field(repr=False, default_factory=list)
    output: str | None = None
    path: Path | None = None
    meta_path: Path | None = None
    max_rating_id: int | None = None
    max_comparison_id: int | None = None

    @property
    def strategy(self) -> str | None:
        return self.params.get("strategy")


def provenance(snap, fmt: str) -> dict[str, Any]:
    """What the meta file records: the snapshot, its parameters (filters included) and what was read."""
    params = dict(snap.params or {})
    return {"snapshot_id": snap.snapshot_id, "format": fmt, "n_rows": snap.n_rows,
            "params": params, "filters": params.get("filters", {}), "agreement": snap.agreement,
            "max_rating_id": snap.max_rating_id, "max_comparison_id": snap.max_comparison_id,
            "snapshot_created_at": snap.created_at.isoformat() if snap.created_at else None}


def build_pinned(db_url: str | None, params: dict[str, Any], filters: ExportFilters) -> Export:
    """`build` inside one pinned read snapshot."""
    from llmops.db.engine import read_only_session

    with read_only_session(db_url, snapshot=True) as session, session.begin():
        return build(session, params, filters)


def record_export(session, ex: Export):
    return snapshots.record(session, snapshot=ex.snapshot_id, params=ex.params, rows=ex.rows, summary=ex.summary,
                            high_water=ex.high_water)


def export(db_url: str | None, fmt: str, out_path: str | os.PathLike, *, output: str | None = None,
           filters: ExportFilters | None = None, **options: Any) -> ExportResult:
    """Export `fmt` (see `formats.FORMATS`) to `out_path`; `options` are `export_params`' keywords."""
    from llmops.db import session_factory
    from llmops.db.migrate import check_schema

    filters = filters or ExportFilters()
    params = export_params(fmt, filters, **options)
    output = writers.output_for(out_path, output)
    check_schema(db_url)
    ex = build_pinned(db_url, params, filters)
    with session_factory(db_url)() as session, session.begin():
        record_export(session, ex)
    result = write_snapshot(db_url, ex.snapshot_id, out_path, output)
    result.rows = ex.rows
    return result


def write_snapshot(db_url: str | None, snapshot_id: str, out_path: str | os.PathLike,
                   output: str | None = None) -> ExportResult:
    """Write a recorded snapshot's stored rows again (the same bytes as when it was first written)."""
    from llmops.db.engine import read_only_session
    from llmops.db.migrate import check_schema

    output = writers.output_for(out_path, output)
    check_schema(db_url)
    with read_only_session(db_url) as session, session.begin():
        snap = snapshots.get(session, snapshot_id)
        texts = snapshots.all_rows(session, snapshot_id)
        fmt = snapshots.snapshot_format(snap)
        prov = provenance(snap, fmt)
    path, meta = writers.write(texts, fmt, snap.params or {}, out_path, output, prov)
    return ExportResult(snapshot_id=snapshot_id, format=fmt, n_rows=len(texts), agreement=snap.agreement or {},
                        params=snap.params or {}, output=output, path=path, meta_path=meta,
                        max_rating_id=snap.max_rating_id, max_comparison_id=snap.max_comparison_id)

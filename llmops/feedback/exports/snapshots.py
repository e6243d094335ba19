"""Pinned snapshots: an export's rows stored as the exact JSON text served, under an id that
addresses the content (``fbs_`` + sha256 of parameters and rows).

A snapshot id re-read later gives the same rows, byte for byte, however much feedback
arrived since; every file written from it (JSONL, Parquet, `datasets` folder) is made
from those stored texts.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from llmops.feedback.errors import NotFound
from llmops.feedback.tables import ExportRow, ExportSnapshot

SNAPSHOT_PATTERN = "^fbs_[0-9a-f]{1,60}$"


def row_json(row: dict[str, Any]) -> str:
    """The one serialisation of a row (stored, served and written to files alike)."""
    return json.dumps(row, ensure_ascii=False)


def snapshot_id(params: dict[str, Any], rows: list[dict[str, Any]]) -> str:
    digest = hashlib.sha256(json.dumps([params, rows], sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    return f"fbs_{digest[:20]}"


def snapshot_format(snap: ExportSnapshot) -> str:
    """The format of a stored snapshot (those recorded before formats existed are TRL preference pairs)."""
    return (snap.params or {}).get("format", "trl-preference")


def record(session: Session, *, snapshot: str, params: dict[str, Any], rows: list[dict[str, Any]],
           summary: dict[str, Any], high_water: dict[str, int | None]) -> ExportSnapshot:
    """Store the snapshot and its rows once (a second export of the same content finds it)."""
    snap = session.get(ExportSnapshot, snapshot)
    if snap is None:
        snap = ExportSnapshot(snapshot_id=snapshot, strategy=params.get("strategy") or params["format"],
                              params=params, n_rows=len(rows), max_rating_id=high_water.get("max_rating_id"),
                              max_comparison_id=high_water.get("max_comparison_id"), agreement=summary)
        session.add(snap)
        session.flush()
    if rows and session.scalar(select(func.count()).where(ExportRow.snapshot_id == snapshot)) == 0:
        session.execute(ExportRow.__table__.insert(),
                        [{"snapshot_id": snapshot, "seq": i, "row_json": row_json(r)} for i, r in enumerate(rows)])
    return snap


def get(session: Session, snapshot: str) -> ExportSnapshot:
    snap = session.get(ExportSnapshot, snapshot)
    if snap is None:
        raise NotFound(f"no export snapshot {snapshot!r}", field="snapshot_id")
    return snap


def read_rows(session: Session, snapshot: str, after: int, limit: int) -> tuple[list[str], int | None]:
    """(row JSON texts with seq > `after`, the last seq if more follow) of a stored snapshot."""
    rows = session.execute(
        select(ExportRow.seq, ExportRow.row_json)
        .where(ExportRow.snapshot_id == snapshot, ExportRow.seq > after)
        .order_by(ExportRow.seq)
        .limit(limit + 1)
    ).all()
    more = len(rows) > limit
    rows = rows[:limit]
    return [r.row_json for r in rows], (rows[-1].seq if more else None)


def all_rows(session: Session, snapshot: str) -> list[str]:
    """Every stored row text of a snapshot, in order; refuses a snapshot whose rows were never stored."""
    snap = get(session, snapshot)
    texts = list(session.scalars(select(ExportRow.row_json).where(ExportRow.snapshot_id == snapshot)
                                 .order_by(ExportRow.seq)))
    if len(texts) != snap.n_rows:
        raise NotFound(f"snapshot {snapshot!r} has no stored rows (recorded by an older version); export again",
                       field="snapshot_id")
    return texts

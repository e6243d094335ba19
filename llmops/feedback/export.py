"""TRL preference pairs ``{prompt, chosen, rejected, margin, ...}``: the first exporter's interface.

Kept for its callers (the loop, the quickstart, `POST /v1/exports` without a format);
the work is done by `llmops.feedback.exports` (formats, filters, snapshots, writers),
where the rules are documented (docs/feedback.md, "Exports").
"""

from __future__ import annotations

import os

from sqlalchemy.orm import Session

from llmops.feedback.exports import ExportFilters, ExportResult, export
from llmops.feedback.exports.build import Export, build, export_params
from llmops.feedback.exports.pairs import STRATEGIES
from llmops.feedback.exports.run import record_export
from llmops.feedback.exports.snapshots import read_rows as read_snapshot_rows
from llmops.feedback.exports.snapshots import row_json

__all__ = ["STRATEGIES", "ExportResult", "build_export", "export_preferences", "read_snapshot_rows",
           "record_snapshot", "row_json"]


def build_export(session: Session, strategy: str = "best_vs_worst", min_margin: float = 0.0, seed: int = 0) -> Export:
    """TRL preference pairs of the whole store (reads only; see `record_snapshot`)."""
    filters = ExportFilters()
    return build(session, export_params("trl-preference", filters, strategy=strategy, min_margin=min_margin,
                                        seed=seed), filters)


def record_snapshot(session: Session, result: Export) -> None:
    """Remember the export and its rows, so its snapshot id (lineage) can be looked up and re-read."""
    record_export(session, result)


def export_preferences(db_url: str | None, out_path: str | os.PathLike, strategy: str = "best_vs_worst",
                       min_margin: float = 0.0, seed: int = 0) -> ExportResult:
    """Write preference pairs to `out_path` (JSONL, atomically) and ``<out>.meta.json``."""
    return export(db_url, "trl-preference", out_path, output="jsonl", strategy=strategy, min_margin=min_margin,
                  seed=seed)

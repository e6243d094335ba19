"""Compute one export (rows, parameters, agreement, counts) from the store, in the caller's transaction.

The parameters that make the rows — format, its options and the filters — are hashed
with the rows into the snapshot id; counts and agreement describe what was read and go
to the provenance, not into the id (feedback that changes no row keeps the id).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from llmops.feedback.agreement import krippendorff_alpha
from llmops.feedback.errors import Invalid
from llmops.feedback.exports import formats, snapshots
from llmops.feedback.exports.filters import ExportFilters
from llmops.feedback.exports.pairs import CORRECTION_STRATEGIES, check_params
from llmops.feedback.exports.source import Feedback, load

DEFAULT_STRATEGY = {"trl-preference": "best_vs_worst", "trl-conversational": "best_vs_worst", "reward": "all_pairs"}


@dataclass
class Export:
    snapshot_id: str
    format: str
    rows: list[dict[str, Any]] = field(repr=False)
    params: dict[str, Any]
    summary: dict[str, Any]  # agreement and counts (stored with the snapshot)
    high_water: dict[str, int | None]

    @property
    def n_rows(self) -> int:
        return len(self.rows)

    @property
    def agreement(self) -> dict[str, Any]:
        """The summary under the first exporter's name (`build_export(...).agreement`)."""
        return self.summary


def export_params(fmt: str, filters: ExportFilters, *, strategy: str | None = None, min_margin: float = 0.0,
                  seed: int = 0, kto_threshold: float = 0.5, sft_style: str = "messages") -> dict[str, Any]:
    """The parameters that determine an export's rows (validated; only those `fmt` uses)."""
    if fmt not in formats.FORMATS:
        raise Invalid(f"unknown export format {fmt!r}; choose one of {', '.join(formats.FORMATS)}", field="format")
    params: dict[str, Any] = {"format": fmt}
    if fmt in formats.PAIR_FORMATS:
        strategy = strategy or DEFAULT_STRATEGY[fmt]
        check_params(strategy, min_margin)
        params.update(strategy=strategy, min_margin=min_margin, seed=seed)
    elif fmt == "kto":
        if not 0.0 < kto_threshold < 1.0:
            raise Invalid("kto_threshold must be in (0, 1) (a fraction of the rating scale)", field="kto_threshold")
        params["kto_threshold"] = kto_threshold
    elif sft_style not in formats.SFT_STYLES:
        raise Invalid(f"unknown sft_style {sft_style!r}; choose one of {', '.join(formats.SFT_STYLES)}",
                      field="sft_style")
    else:
        params["sft_style"] = sft_style
    params["filters"] = filters.recorded()
    return params


def _agreement(fb: Feedback, rows: list[dict[str, Any]]) -> dict[str, Any]:
    units: dict[int, list[float]] = defaultdict(list)
    for r in fb.ratings:
        units[r.response_id].append(r.unit)
    known = [r["agreement"] for r in rows if r.get("agreement") is not None]
    return {
        "krippendorff_alpha_interval": krippendorff_alpha(units, "interval"),
        "krippendorff_alpha_ordinal": krippendorff_alpha(units, "ordinal"),
        "n_units_multiply_rated": sum(1 for v in units.values() if len(v) >= 2),
        "mean_row_agreement": round(sum(known) / len(known), 6) if known else None,
        "n_rows_with_agreement": len(known),
    }


def build(session: Session, params: dict[str, Any], filters: ExportFilters) -> Export:
    """Rows of the export `params` describe (see `export_params`), read in `session` (reads only)."""
    fmt = params["format"]
    fb = load(session, filters, corrections=fmt == "sft" or params.get("strategy") in CORRECTION_STRATEGIES)
    rows, n_duplicates = formats.format_rows(fmt, fb, params)
    kept = [r for r in rows if filters.keep_row(r)]
    summary = _agreement(fb, kept)
    summary.update(fb.counts(), n_dropped_as_duplicates=n_duplicates,
                   n_dropped_by_filters=len(rows) - len(kept))
    summary["n_pairs_dropped_as_duplicates"] = n_duplicates  # the first exporter's name, kept for readers
    return Export(snapshots.snapshot_id(params, kept), fmt, kept, params, summary, fb.high_water)

"""Which feedback an export reads: project, time range, model, raters, agreement.

The store-level filters (project, time range, model name/version, rater set) narrow
what is *read*: only judgements (ratings, comparisons, corrections) made in the time
range by the named raters on responses of the named model count. The row-level
filters (``min_agreement``, ``min_raters``) drop rows *after* aggregation, on each
row's own ``agreement`` and ``n_raters`` (docs/feedback.md, "Exports").
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from llmops.feedback.errors import Invalid


class ExportFilters(BaseModel):
    """Filters of one export; recorded verbatim in the snapshot's provenance."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    project: str | None = Field(None, min_length=1, max_length=200,
                                description="only items of this project (name or id)")
    since: datetime | None = Field(None, description="judgements made at or after this time (UTC if naive)")
    until: datetime | None = Field(None, description="judgements made before this time (UTC if naive)")
    model: str | None = Field(None, min_length=1, max_length=500,
                              description="only responses whose model reference is exactly this")
    model_version: str | None = Field(None, min_length=1, max_length=200,
                                      description="only responses of this model version")
    raters: tuple[str, ...] | None = Field(None, description="only judgements by these rater names")
    min_agreement: float | None = Field(None, ge=0.0, le=1.0,
                                        description="drop rows whose agreement is lower (or unknown)")
    min_raters: int | None = Field(None, ge=1, le=10_000, description="drop rows judged by fewer raters")

    @field_validator("since", "until")
    @classmethod
    def _utc(cls, v: datetime | None) -> datetime | None:
        if v is None:
            return None
        # Stored times are UTC (SQLite keeps them without an offset): compare in UTC.
        return v.replace(tzinfo=timezone.utc) if v.tzinfo is None else v.astimezone(timezone.utc)

    @field_validator("raters")
    @classmethod
    def _raters(cls, v: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if v is None:
            return None
        names = tuple(sorted({n.strip() for n in v if n.strip()}))
        if not names:
            raise ValueError("raters must name at least one rater")
        return names

    @model_validator(mode="after")
    def _range(self) -> ExportFilters:
        if self.since and self.until and self.since >= self.until:
            raise ValueError("since must be before until")
        return self

    def recorded(self) -> dict[str, Any]:
        """The filters as stored in provenance (only those set; times as ISO 8601 UTC)."""
        out = self.model_dump(exclude_none=True, mode="json")
        if "raters" in out:
            out["raters"] = list(out["raters"])
        return out

    def keep_row(self, row: dict[str, Any]) -> bool:
        """Row-level filters on an aggregated row (rows without an agreement fail any `min_agreement`)."""
        if self.min_agreement is not None:
            agreement = row.get("agreement")
            if agreement is None or agreement < self.min_agreement:
                return False
        if self.min_raters is not None and row.get("n_raters", 0) < self.min_raters:
            return False
        return True


def make_filters(**values: Any) -> ExportFilters:
    """`ExportFilters` from keyword values, turning validation errors into the store's `Invalid` (a 422 / exit 2)."""
    from pydantic import ValidationError

    try:
        return ExportFilters(**{k: v for k, v in values.items() if v is not None})
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "filters"
        raise Invalid(f"export filter {where}: {err['msg']}", field=where) from None

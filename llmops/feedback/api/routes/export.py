"""Exports: ``POST /v1/exports`` pins a snapshot of any format (rows stored), ``GET .../rows`` pages it
by cursor, ``GET .../file`` gives it as one JSONL or Parquet file.

Re-reading a snapshot's pages gives the same bytes while writers keep writing: the rows
were computed in one pinned read snapshot and stored as the served JSON text.
``GET /v1/export/preferences`` (the whole export in one answer) is kept for small stores.
"""

from __future__ import annotations

import json
from datetime import datetime

from fastapi import APIRouter, Depends, Path, Query
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from pydantic import Field

from llmops.feedback.api.call import Call, call_for
from llmops.feedback.api.routes import ERRORS
from llmops.feedback.errors import NotFound
from llmops.feedback.exports.formats import FORMATS, SFT_STYLES
from llmops.feedback.exports.pairs import STRATEGIES
from llmops.feedback.exports.snapshots import SNAPSHOT_PATTERN, snapshot_format
from llmops.feedback.policies import Action
from llmops.feedback.schemas import DEFAULT_PAGE_LIMIT, Strict

router = APIRouter(tags=["export"], responses=ERRORS)
MAX_EXPORT_PAGE = 5_000


class FiltersIn(Strict):
    """What the export reads (docs/feedback.md, "Exports")."""

    project: str | None = Field(None, min_length=1, max_length=200, description="project name or id")
    since: datetime | None = Field(None, description="judgements made at or after (ISO 8601; UTC if no offset)")
    until: datetime | None = Field(None, description="judgements made before")
    model: str | None = Field(None, min_length=1, max_length=500, description="responses of this model reference")
    model_version: str | None = Field(None, min_length=1, max_length=200)
    raters: list[str] | None = Field(None, min_length=1, max_length=1000, description="rater names")
    min_agreement: float | None = Field(None, ge=0.0, le=1.0)
    min_raters: int | None = Field(None, ge=1, le=10_000)


class ExportIn(Strict):
    format: str = Field("trl-preference", pattern=f"^({'|'.join(FORMATS)})$")
    strategy: str | None = Field(None, pattern=f"^({'|'.join(STRATEGIES)})$",
                                 description="pair formats; default best_vs_worst (reward: all_pairs)")
    min_margin: float = Field(0.0, ge=0.0, le=1.0, description="pair formats: margin scale (0, 1]")
    seed: int = Field(0, ge=0, le=2**31 - 1)
    kto_threshold: float = Field(0.5, gt=0.0, lt=1.0, description="kto: on the rating scale mapped to [0, 1]")
    sft_style: str = Field("messages", pattern=f"^({'|'.join(SFT_STYLES)})$")
    filters: FiltersIn = Field(default_factory=FiltersIn)


def _snapshot_out(snap) -> dict:
    return {
        "snapshot_id": snap.snapshot_id,
        "format": snapshot_format(snap),
        "params": snap.params,
        "n_rows": snap.n_rows,
        "agreement": snap.agreement,
        "max_rating_id": snap.max_rating_id,
        "max_comparison_id": snap.max_comparison_id,
        "created_at": snap.created_at.isoformat(),
        "rows_url": f"/v1/exports/{snap.snapshot_id}/rows",
        "file_url": f"/v1/exports/{snap.snapshot_id}/file",
    }


def _build_and_record(call: Call, params: dict, filters) -> dict:
    from llmops.feedback.exports.build import build
    from llmops.feedback.exports.run import record_export

    with call.snapshot_sessions() as s, s.begin():
        result = build(s, params, filters)
    return call.transact(lambda s, _p: _snapshot_out(record_export(s, result)))


@router.post("/v1/exports", status_code=201, summary="Create (or find) a pinned export snapshot of any format")
async def create_export(body: ExportIn, call: Call = Depends(call_for(Action.EXPORT_READ))) -> dict:
    from llmops.feedback.exports import make_filters
    from llmops.feedback.exports.build import export_params

    filters = make_filters(**body.filters.model_dump())
    params = export_params(body.format, filters, strategy=body.strategy, min_margin=body.min_margin, seed=body.seed,
                           kto_threshold=body.kto_threshold, sft_style=body.sft_style)
    return await run_in_threadpool(_build_and_record, call, params, filters)


@router.get("/v1/exports/{snapshot_id}", summary="A snapshot's parameters, size and agreement")
def get_export(snapshot_id: str = Path(pattern=SNAPSHOT_PATTERN),
               call: Call = Depends(call_for(Action.EXPORT_READ))) -> dict:
    from llmops.feedback.tables import ExportSnapshot

    def read(s, _p):
        snap = s.get(ExportSnapshot, snapshot_id)
        if snap is None:
            raise NotFound(f"no export snapshot {snapshot_id!r}", field="snapshot_id")
        return _snapshot_out(snap)

    return call.read(read)


@router.get("/v1/exports/{snapshot_id}/rows", summary="A page of a snapshot's rows (cursor paging, byte-stable)")
def export_rows(
    snapshot_id: str = Path(pattern=SNAPSHOT_PATTERN),
    cursor: int = Query(-1, ge=-1, description="next_cursor of the previous page"),
    limit: int = Query(DEFAULT_PAGE_LIMIT, ge=1, le=MAX_EXPORT_PAGE),
    call: Call = Depends(call_for(Action.EXPORT_READ)),
) -> Response:
    from llmops.feedback.exports.snapshots import read_rows
    from llmops.feedback.tables import ExportSnapshot

    def read(s, _p):
        snap = s.get(ExportSnapshot, snapshot_id)
        if snap is None:
            raise NotFound(f"no export snapshot {snapshot_id!r}", field="snapshot_id")
        rows, last = read_rows(s, snapshot_id, cursor, limit)
        if snap.n_rows and not rows and cursor < 0:
            raise NotFound(f"snapshot {snapshot_id!r} has no stored rows (recorded by an older version); "
                           "create it again with POST /v1/exports", field="snapshot_id")
        return rows, last

    rows, last = call.read(read)
    # Assembled from the stored texts: the same page is the same bytes on every read.
    body = (f'{{"snapshot_id":{json.dumps(snapshot_id)},"rows":[{",".join(rows)}],'
            f'"next_cursor":{json.dumps(last)}}}')
    return Response(body.encode(), media_type="application/json")


@router.get("/v1/exports/{snapshot_id}/file", summary="A snapshot as one JSONL or Parquet file (byte-stable)")
def export_file(
    snapshot_id: str = Path(pattern=SNAPSHOT_PATTERN),
    as_: str = Query("jsonl", alias="as", pattern="^(jsonl|parquet)$"),
    call: Call = Depends(call_for(Action.EXPORT_READ)),
) -> Response:
    import tempfile

    from llmops.feedback.exports import snapshots, writers

    def read(s, _p):
        snap = snapshots.get(s, snapshot_id)
        return snapshot_format(snap), dict(snap.params or {}), snapshots.all_rows(s, snapshot_id)

    fmt, params, texts = call.read(read)
    if as_ == "jsonl":
        return Response("".join(t + "\n" for t in texts).encode(), media_type="application/x-ndjson")
    with tempfile.TemporaryDirectory() as tmp:
        path, _ = writers.write(texts, fmt, params, f"{tmp}/{snapshot_id}.parquet", "parquet",
                                {"snapshot_id": snapshot_id})
        data = path.read_bytes()
    return Response(data, media_type="application/vnd.apache.parquet",
                    headers={"Content-Disposition": f'attachment; filename="{snapshot_id}.parquet"'})


@router.get("/v1/export/preferences", summary="Preference pairs (TRL format) with snapshot id and agreement")
def export_preferences(
    strategy: str = Query("best_vs_worst", pattern=f"^({'|'.join(STRATEGIES)})$"),
    min_margin: float = Query(0.0, ge=0.0, le=1.0),
    seed: int = Query(0, ge=0, le=2**31 - 1),
    call: Call = Depends(call_for(Action.EXPORT_READ)),
) -> dict:
    from llmops.feedback.export import build_export, record_snapshot

    with call.snapshot_sessions() as s, s.begin():
        result = build_export(s, strategy=strategy, min_margin=min_margin, seed=seed)
    call.transact(lambda s, _p: record_snapshot(s, result))
    return {
        "snapshot_id": result.snapshot_id,
        "strategy": strategy,
        "min_margin": min_margin,
        "n_rows": len(result.rows),
        "agreement": result.summary,
        "rows": result.rows,
    }

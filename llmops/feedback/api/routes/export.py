"""Exports: ``POST /v1/exports`` pins a snapshot (rows stored), ``GET .../rows`` pages it by cursor.

Re-reading a snapshot's pages gives the same bytes while writers keep writing: the rows
were computed in one pinned read snapshot and stored as the served JSON text.
``GET /v1/export/preferences`` (the whole export in one answer) is kept for small stores.
"""

from __future__ import annotations

import json

from fastapi import APIRouter, Depends, Path, Query
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from pydantic import Field

from llmops.feedback.api.call import Call, call_for
from llmops.feedback.api.routes import ERRORS
from llmops.feedback.errors import NotFound
from llmops.feedback.policies import Action
from llmops.feedback.schemas import DEFAULT_PAGE_LIMIT, Strict

router = APIRouter(tags=["export"], responses=ERRORS)
MAX_EXPORT_PAGE = 5_000


class ExportIn(Strict):
    strategy: str = Field("best_vs_worst", pattern="^(best_vs_worst|all_pairs|best_vs_random_lower)$")
    min_margin: float = Field(0.0, ge=0.0, le=1e6)
    seed: int = Field(0, ge=0, le=2**31 - 1)


def _snapshot_out(snap) -> dict:
    return {
        "snapshot_id": snap.snapshot_id,
        "params": snap.params,
        "n_rows": snap.n_rows,
        "agreement": snap.agreement,
        "max_rating_id": snap.max_rating_id,
        "max_comparison_id": snap.max_comparison_id,
        "created_at": snap.created_at.isoformat(),
        "rows_url": f"/v1/exports/{snap.snapshot_id}/rows",
    }


@router.post("/v1/exports", status_code=201, summary="Create (or find) a pinned preference snapshot")
async def create_export(body: ExportIn, call: Call = Depends(call_for(Action.EXPORT_READ))) -> dict:
    from llmops.feedback.export import build_export, record_snapshot
    from llmops.feedback.tables import ExportSnapshot

    def build():
        with call.snapshot_sessions() as s, s.begin():
            return build_export(s, strategy=body.strategy, min_margin=body.min_margin, seed=body.seed)

    result = await run_in_threadpool(build)

    def record(s, _p):
        record_snapshot(s, result)
        return _snapshot_out(s.get(ExportSnapshot, result.snapshot_id))

    return await run_in_threadpool(call.transact, record)


@router.get("/v1/exports/{snapshot_id}", summary="A snapshot's parameters, size and agreement")
def get_export(snapshot_id: str = Path(pattern="^fbs_[0-9a-f]{1,60}$"),
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
    snapshot_id: str = Path(pattern="^fbs_[0-9a-f]{1,60}$"),
    cursor: int = Query(-1, ge=-1, description="next_cursor of the previous page"),
    limit: int = Query(DEFAULT_PAGE_LIMIT, ge=1, le=MAX_EXPORT_PAGE),
    call: Call = Depends(call_for(Action.EXPORT_READ)),
) -> Response:
    from llmops.feedback.export import read_snapshot_rows
    from llmops.feedback.tables import ExportSnapshot

    def read(s, _p):
        snap = s.get(ExportSnapshot, snapshot_id)
        if snap is None:
            raise NotFound(f"no export snapshot {snapshot_id!r}", field="snapshot_id")
        rows, last = read_snapshot_rows(s, snapshot_id, cursor, limit)
        if snap.n_rows and not rows and cursor < 0:
            raise NotFound(f"snapshot {snapshot_id!r} has no stored rows (recorded by an older version); "
                           "create it again with POST /v1/exports", field="snapshot_id")
        return rows, last

    rows, last = call.read(read)
    # Assembled from the stored texts: the same page is the same bytes on every read.
    body = (f'{{"snapshot_id":{json.dumps(snapshot_id)},"rows":[{",".join(rows)}],'
            f'"next_cursor":{json.dumps(last)}}}')
    return Response(body.encode(), media_type="application/json")


@router.get("/v1/export/preferences", summary="Preference pairs (TRL format) with snapshot id and agreement")
def export_preferences(
    strategy: str = Query("best_vs_worst", pattern="^(best_vs_worst|all_pairs|best_vs_random_lower)$"),
    min_margin: float = Query(0.0, ge=0.0, le=1e6),
    seed: int = Query(0, ge=0, le=2**31 - 1),
    call: Call = Depends(call_for(Action.EXPORT_READ)),
) -> dict:
    from llmops.feedback.export import build_export, record_snapshot

    def build():
        with call.snapshot_sessions() as s, s.begin():
            return build_export(s, strategy=strategy, min_margin=min_margin, seed=seed)

    result = build()
    call.transact(lambda s, _p: record_snapshot(s, result))
    return {
        "snapshot_id": result.snapshot_id,
        "strategy": strategy,
        "min_margin": min_margin,
        "n_rows": len(result.rows),
        "agreement": result.agreement,
        "rows": result.rows,
    }

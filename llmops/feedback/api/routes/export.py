from __future__ import annotations

from fastapi import APIRouter, Depends, Query

from llmops.feedback.api.call import Call, call_for
from llmops.feedback.api.routes import ERRORS
from llmops.feedback.policies import Action

router = APIRouter(prefix="/v1/export", tags=["export"], responses=ERRORS)


@router.get("/preferences", summary="Preference pairs (TRL format) with snapshot id and agreement")
def export_preferences(
    strategy: str = Query("best_vs_worst", pattern="^(best_vs_worst|all_pairs|best_vs_random_lower)$"),
    min_margin: float = Query(0.0, ge=0.0, le=1e6),
    seed: int = Query(0, ge=0, le=2**31 - 1),
    call: Call = Depends(call_for(Action.EXPORT_READ)),
) -> dict:
    from llmops.feedback.export import build_export, record_snapshot

    # Built in a read-only snapshot (never holding the write lock for the whole export),
    # then the snapshot record is written in a short transaction of its own.
    result = call.read(lambda s, _p: build_export(s, strategy=strategy, min_margin=min_margin, seed=seed))
    call.transact(lambda s, _p: record_snapshot(s, result))
    return {
        "snapshot_id": result.snapshot_id,
        "strategy": strategy,
        "min_margin": min_margin,
        "n_rows": len(result.rows),
        "agreement": result.agreement,
        "rows": result.rows,
    }

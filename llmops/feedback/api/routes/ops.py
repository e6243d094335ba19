"""Probes and metrics: ``/healthz`` (liveness) is separate from ``/readyz`` (readiness).

Liveness only says the process answers: restarting it would not fix a database outage.
Readiness says it can take writes now — the database answers, the writer is alive and
not stuck on a batch — so a load balancer stops sending traffic while it cannot.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from sqlalchemy import text

from llmops.feedback import metrics

router = APIRouter(tags=["ops"])


@router.get("/healthz", summary="Liveness: the process answers")
async def healthz() -> dict:
    return {"status": "ok"}


def _database_ok(request: Request) -> str | None:
    try:
        with request.app.state.read_sessions() as s:
            s.execute(text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001 - reported as not ready, the detail goes to the log only
        return type(exc).__name__
    return None


@router.get("/readyz", summary="Readiness: database reachable, writer alive and not hung")
async def readyz(request: Request) -> JSONResponse:
    writer = request.app.state.committer.health()
    db_error = await run_in_threadpool(_database_ok, request)
    problems = []
    if db_error:
        problems.append("database unreachable")
    if not writer["alive"]:
        problems.append("writer dead")
    if writer["hung"]:
        problems.append("writer hung")
    body = {"status": "ready" if not problems else "not ready", "problems": problems, "writer": writer}
    return JSONResponse(body, status_code=503 if problems else 200, headers=None if not problems else {"Retry-After": "1"})


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
def prometheus() -> Response:
    body, content_type = metrics.render()
    return Response(body, media_type=content_type)

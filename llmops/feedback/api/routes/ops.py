from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy import text

from llmops.feedback import metrics

router = APIRouter(tags=["ops"])


@router.get("/healthz", summary="Liveness and database reachability")
def healthz(request: Request) -> dict:
    with request.app.state.read_sessions() as s:
        s.execute(text("SELECT 1"))
    return {"status": "ok"}


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
def prometheus() -> Response:
    body, content_type = metrics.render()
    return Response(body, media_type=content_type)

"""Monitoring pages: quality and drift over time, alert states, incidents, alert events, retraining jobs."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import HTMLResponse

from llmops.errors import DataError, UserError
from llmops.ui import monitor_views as views
from llmops.ui.guard import NotFound, Viewer, guard
from llmops.ui.policies import UiAction
from llmops.ui.render import render

router = APIRouter()
NAV = ("Monitoring", "/monitoring")


def _db(request: Request) -> str:
    return request.app.state.settings.db_url


@router.get("/monitoring", response_class=HTMLResponse)
def overview(request: Request, window: str | None = Query(None, max_length=8),
             incidents_before: int | None = Query(None, ge=1), jobs_before: str | None = Query(None, max_length=120),
             viewer: Viewer = Depends(guard(UiAction.VIEW))) -> HTMLResponse:
    return render(request, "monitoring/overview.html", viewer,
                  **views.overview_context(_db(request), window, incidents_before, jobs_before))


@router.get("/monitoring/drift/{name}/{version}", response_class=HTMLResponse)
def drift(request: Request, name: str, version: int, window: str | None = Query(None, max_length=8),
          viewer: Viewer = Depends(guard(UiAction.VIEW))) -> HTMLResponse:
    try:
        ctx = views.drift_context(_db(request), name, version, window)
    except DataError as exc:
        raise NotFound(str(exc)) from None
    return render(request, "monitoring/drift.html", viewer, **ctx)


@router.get("/monitoring/events", response_class=HTMLResponse)
def events(request: Request, rule: str | None = Query(None, max_length=128), before: int | None = Query(None, ge=1),
           viewer: Viewer = Depends(guard(UiAction.VIEW))) -> HTMLResponse:
    return render(request, "monitoring/events.html", viewer, **views.alert_events(_db(request), rule, before))


@router.get("/monitoring/jobs/{job_id}", response_class=HTMLResponse)
def job(request: Request, job_id: str, viewer: Viewer = Depends(guard(UiAction.VIEW))) -> HTMLResponse:
    try:
        ctx = views.job_context(_db(request), job_id)
    except UserError as exc:
        raise NotFound(str(exc)) from None
    return render(request, "monitoring/job.html", viewer, **ctx)

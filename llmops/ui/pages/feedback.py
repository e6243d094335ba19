"""The feedback page: agreement, rating distributions per model version, rater progress, critiques."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import HTMLResponse

from llmops.ui import feedback_views as views
from llmops.feedback.errors import NotFound as FeedbackNotFound
from llmops.ui.guard import NotFound, Viewer, guard
from llmops.ui.policies import UiAction
from llmops.ui.render import render

router = APIRouter()
NAV = ("Feedback", "/feedback")
RATER_PAGE_ENV = "LLMOPS_UI_RATER_PAGE_URL"


@router.get("/feedback", response_class=HTMLResponse)
def overview(request: Request, window: str | None = Query(None, max_length=8),
             raters_after: int | None = Query(None, ge=0), critiques_before: int | None = Query(None, ge=1),
             corrections_before: int | None = Query(None, ge=1),
             viewer: Viewer = Depends(guard(UiAction.VIEW))) -> HTMLResponse:
    ctx = views.feedback_context(request.app.state.settings.db_url, window, raters_after, critiques_before,
                                 corrections_before)
    return render(request, "feedback/overview.html", viewer, rater_page_url=_rater_page(), **ctx)


def _rater_page() -> str:
    """Where raters work: the feedback service's page (`llmops feedback serve`, default port 8080)."""
    import os

    return os.environ.get(RATER_PAGE_ENV, "http://127.0.0.1:8080/")


@router.get("/feedback/projects/{name}", response_class=HTMLResponse)
def project(request: Request, name: str, viewer: Viewer = Depends(guard(UiAction.VIEW))) -> HTMLResponse:
    try:
        ctx = views.project_context(request.app.state.settings.db_url, name)
    except FeedbackNotFound as exc:
        raise NotFound(exc.message) from None
    return render(request, "feedback/project.html", viewer, rater_page_url=_rater_page(), **ctx)

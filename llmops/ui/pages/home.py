"""The landing page: what the UI shows and where to go."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from starlette.responses import HTMLResponse

from llmops.ui.guard import Viewer, guard
from llmops.ui.policies import UiAction
from llmops.ui.render import render

router = APIRouter()
NAV = None


@router.get("/", response_class=HTMLResponse)
def home(request: Request, viewer: Viewer = Depends(guard(UiAction.VIEW))) -> HTMLResponse:
    areas = [n for n in request.app.state.nav]
    return render(request, "home.html", viewer, areas=areas)

"""Jinja2 rendering: every page extends ``base.html`` (layout, nav, who is logged in).

Templates autoescape; charts are inline SVG built from presentation attributes (no inline
styles or scripts), so the strict Content-Security-Policy set by the app holds.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.templating import Jinja2Templates
from starlette.responses import HTMLResponse

from llmops.ui.guard import Viewer

TEMPLATES_DIR = Path(__file__).parent / "templates"
STATIC_DIR = Path(__file__).parent / "static"

templates = Jinja2Templates(directory=str(TEMPLATES_DIR))


def _query(request: Request, **changes: Any) -> str:
    """The current query string with `changes` applied (None removes a key): pagination, filters."""
    params = dict(request.query_params)
    for k, v in changes.items():
        if v is None or v == "":
            params.pop(k, None)
        else:
            params[k] = str(v)
    return "?" + urlencode(params) if params else "?"


def _fmt(value: Any, digits: int = 4) -> str:
    """Numbers shortened for tables; everything else as text."""
    if isinstance(value, bool) or value is None:
        return "—" if value is None else str(value)
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


templates.env.globals["query"] = _query
templates.env.filters["fmt"] = _fmt


def render(request: Request, name: str, viewer: Viewer | None, status: int = 200, **context: Any) -> HTMLResponse:
    """Render template `name` with the nav, the viewer and `context`."""
    ctx = {"request": request, "viewer": viewer, "nav": request.app.state.nav, "status": status, **context}
    return templates.TemplateResponse(request, name, ctx, status_code=status)

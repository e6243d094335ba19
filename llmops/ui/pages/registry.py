"""Registry pages: models, versions, a version (card, lineage, evaluations, gate results) and the
admin actions promote / move alias, which run through the same governance and gates as the CLI."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import HTMLResponse, RedirectResponse, Response

from llmops.registry.entities import RegistryNotFound
from llmops.registry.governance import Principal as RegistryPrincipal
from llmops.ui import registry_views as views
from llmops.ui.guard import BadRequest, NotFound, Viewer, guard
from llmops.ui.policies import UiAction
from llmops.ui.render import render

router = APIRouter()
NAV = ("Registry", "/registry")


def _db(request: Request) -> str:
    return request.app.state.settings.db_url


def _registry_principal(viewer: Viewer) -> RegistryPrincipal:
    """The registry's principal for the logged-in key (the id its audit logs record, as the CLI's)."""
    p = viewer.principal
    return RegistryPrincipal(f"key:{p.key_id}:{p.rater_name}", p.role.value)


@router.get("/registry", response_class=HTMLResponse)
def models(request: Request, after: str | None = Query(None, max_length=128),
           viewer: Viewer = Depends(guard(UiAction.VIEW))) -> HTMLResponse:
    return render(request, "registry/models.html", viewer, **views.models_context(_db(request), after))


@router.get("/registry/{name}", response_class=HTMLResponse)
def model(request: Request, name: str, before: int | None = Query(None, ge=1),
          events_before: int | None = Query(None, ge=1), audit_before: int | None = Query(None, ge=1),
          viewer: Viewer = Depends(guard(UiAction.VIEW))) -> HTMLResponse:
    try:
        ctx = views.model_context(_db(request), name, before, events_before, audit_before)
    except RegistryNotFound as exc:
        raise NotFound(str(exc)) from None
    return render(request, "registry/model.html", viewer, **ctx)


def _version_page(request: Request, viewer: Viewer, name: str, version: int, outcome: dict | None = None,
                  status: int = 200) -> HTMLResponse:
    try:
        ctx = views.version_context(_db(request), name, version)
    except RegistryNotFound as exc:
        raise NotFound(str(exc)) from None
    return render(request, "registry/version.html", viewer, status=status, outcome=outcome, **ctx)


@router.get("/registry/{name}/{version}", response_class=HTMLResponse)
def version_page(request: Request, name: str, version: int,
                 viewer: Viewer = Depends(guard(UiAction.VIEW))) -> HTMLResponse:
    return _version_page(request, viewer, name, version)


def _form(viewer: Viewer) -> tuple[str, str, bool]:
    alias = viewer.form.get("alias", "").strip()
    if not alias:
        raise BadRequest("alias: required")
    return alias, viewer.form.get("reason", "").strip(), viewer.form.get("force") == "1"


@router.post("/registry/{name}/{version}/promote", response_class=HTMLResponse)
async def promote(request: Request, name: str, version: int,
                  viewer: Viewer = Depends(guard(UiAction.REGISTRY_ALIAS))) -> Response:
    """Promote through the gates; a refusal re-renders the page (409) with every failing gate and why."""
    alias, reason, force = _form(viewer)
    outcome = await run_in_threadpool(views.promote, _db(request), _registry_principal(viewer), name, version,
                                      alias, reason, force, viewer.form.get("gates") or None)
    if outcome["ok"]:
        return RedirectResponse(f"{views.version_url(name, version)}?done={alias}", status_code=303)
    return await run_in_threadpool(_version_page, request, viewer, name, version, outcome, 409)


@router.post("/registry/{name}/{version}/alias", response_class=HTMLResponse)
async def move_alias(request: Request, name: str, version: int,
                     viewer: Viewer = Depends(guard(UiAction.REGISTRY_ALIAS))) -> Response:
    """Point an alias at this version without gates (refused on a protected alias unless forced)."""
    alias, reason, force = _form(viewer)
    outcome = await run_in_threadpool(views.move_alias, _db(request), _registry_principal(viewer), name, alias,
                                      version, reason, force)
    if outcome["ok"]:
        return RedirectResponse(f"{views.version_url(name, version)}?done={alias}", status_code=303)
    return await run_in_threadpool(_version_page, request, viewer, name, version, outcome, 409)

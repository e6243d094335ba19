"""Log in with an API key (the feedback store's keys), log out. The only routes without a guard."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import HTMLResponse, RedirectResponse, Response

from llmops.feedback.errors import Unauthenticated
from llmops.ui.guard import Forbidden, read_form, same_origin
from llmops.ui.policies import UiAction, ui_allowed
from llmops.ui.render import render
from llmops.ui.session import COOKIE, check_csrf, safe_next

router = APIRouter()


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, next: str = "/") -> HTMLResponse:
    return render(request, "login.html", None, next=safe_next(next), error=None)


@router.post("/login")
async def login(request: Request) -> Response:
    if not same_origin(request):
        raise Forbidden("cross-origin login refused")
    form = await read_form(request)
    token, target = form.get("key", "").strip(), safe_next(form.get("next"))
    verifier = request.app.state.verifier
    try:
        principal = await run_in_threadpool(verifier.authenticate, token)
    except Unauthenticated as exc:
        return render(request, "login.html", None, status=401, next=target, error=exc.message)
    if not ui_allowed(principal, UiAction.VIEW):
        return render(request, "login.html", None, status=403, next=target,
                      error=f"role {principal.role.value!r} may not use the UI")
    cookie, _ = request.app.state.codec.new(token)
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(COOKIE, cookie, max_age=request.app.state.codec.max_age_s, httponly=True,
                        samesite="strict", secure=request.url.scheme == "https", path="/")
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    session = request.app.state.codec.read(request.cookies.get(COOKIE))
    if session is not None:
        form = await read_form(request)
        if not same_origin(request) or not check_csrf(session, form.get("csrf")):
            raise Forbidden("missing or wrong CSRF token")
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response


@router.get("/healthz")
def healthz() -> dict:
    return {"status": "ok"}

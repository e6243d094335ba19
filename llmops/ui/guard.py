"""The one dependency every UI route declares: who is asking, and may they do this?

`guard(action)` reads the session cookie, re-verifies its API key (the feedback store's
`KeyVerifier`, cached for seconds), checks `UI_POLICY`, and for POSTs parses the
urlencoded form and checks its CSRF token and Origin. `create_app` refuses to start when a
route lacks a guard (unless listed public), so a new page cannot forget it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from llmops.feedback.errors import Unauthenticated
from llmops.feedback.policies import Principal
from llmops.ui.policies import UiAction, ui_allowed
from llmops.ui.session import COOKIE, SessionData, check_csrf

MAX_FORM_BYTES = 64 * 1024


class UiError(Exception):
    """An error page: HTTP status and a message meant for the user."""

    status = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadRequest(UiError):
    status = 400


class LoginRequired(UiError):
    status = 401


class Forbidden(UiError):
    status = 403


class NotFound(UiError):
    status = 404


@dataclass(frozen=True)
class Viewer:
    """The authenticated user of one request: role checks for templates, the CSRF token for forms."""

    principal: Principal
    session: SessionData
    form: Mapping[str, str] = field(default_factory=dict)

    def can(self, action: UiAction | str) -> bool:
        return ui_allowed(self.principal, UiAction(action))

    @property
    def csrf(self) -> str:
        return self.session.csrf


async def current_session(request: Request) -> tuple[SessionData, Principal]:
    """The session and principal of a request (LoginRequired when missing, expired or revoked)."""
    session = request.app.state.codec.read(request.cookies.get(COOKIE))
    if session is None:
        raise LoginRequired("please log in")
    verifier = request.app.state.verifier
    try:
        principal = verifier.cached(session.token) or await run_in_threadpool(verifier.authenticate, session.token)
    except Unauthenticated as exc:
        raise LoginRequired(f"your session ended: {exc.message}") from exc
    return session, principal


def same_origin(request: Request) -> bool:
    """Whether Origin (or Referer), when sent, names this server."""
    origin = request.headers.get("origin") or request.headers.get("referer")
    if not origin or origin == "null":
        return origin is None
    return urlsplit(origin).netloc == request.headers.get("host", "")


async def read_form(request: Request) -> dict[str, str]:
    """An urlencoded form body as {name: last value} (BadRequest on anything else)."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip()
    if ctype != "application/x-www-form-urlencoded":
        raise BadRequest("expected a form post (application/x-www-form-urlencoded)")
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise BadRequest(f"form larger than {MAX_FORM_BYTES} bytes")
    try:
        parsed = parse_qs(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
    except UnicodeDecodeError as exc:
        raise BadRequest("form is not UTF-8") from exc
    return {k: v[-1] for k, v in parsed.items()}


def guard(action: UiAction) -> Callable:
    """The dependency of a route doing `action`: returns the `Viewer` or raises an error page."""

    async def dependency(request: Request) -> Viewer:
        session, principal = await current_session(request)
        if not ui_allowed(principal, action):
            raise Forbidden(f"role {principal.role.value!r} may not {action.value}")
        form: dict[str, str] = {}
        if request.method not in ("GET", "HEAD"):
            if not same_origin(request):
                raise Forbidden("cross-origin form post refused")
            form = await read_form(request)
            if not check_csrf(session, form.get("csrf")):
                raise Forbidden("missing or wrong CSRF token: reload the page and try again")
        return Viewer(principal, session, form)

    dependency.ui_action = action  # type: ignore[attr-defined]  # create_app checks every route has one
    return dependency

"""Application factory of the web UI (`llmops ui`).

`create_app` wires the page routers (`llmops.ui.pages`), the login routes, the static
assets shipped in the package, the key verifier of the feedback store, the trusted-host
check, security headers (a strict CSP: no inline script or style, nothing from other
origins) and error pages. Every page route must declare a `guard` (login, logout and
health live apart, in `login`); the factory refuses to build an app where one does not.
"""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from urllib.parse import quote

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.responses import RedirectResponse, Response

from llmops.ui import login
from llmops.ui.guard import LoginRequired, UiError
from llmops.ui.pages import load_pages
from llmops.ui.render import STATIC_DIR, render
from llmops.ui.session import SessionCodec

log = logging.getLogger(__name__)

DEFAULT_ALLOWED_HOSTS = ("localhost", "127.0.0.1", "[::1]", "::1")  # as the feedback service
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'")


@dataclass(frozen=True)
class UiSettings:
    """What the pages read from: the database and the folders holding run directories."""

    db_url: str
    runs_dirs: tuple[Path, ...] = ()
    scan_on_start: bool = True
    evals_dirs: tuple[Path, ...] = ()  # where eval and bench outputs are looked for (default: runs_dirs)

    @property
    def eval_roots(self) -> tuple[Path, ...]:
        return self.evals_dirs or self.runs_dirs


def _check_guarded(routers: Sequence[APIRouter]) -> None:
    """Refuse page routers with a route that names no `guard` action (deny by default)."""
    for router in routers:
        for route in router.routes:
            nested = getattr(route, "original_router", None)  # FastAPI >= 0.120 includes routers lazily
            if nested is not None:
                _check_guarded([nested])
                continue
            if not isinstance(route, APIRoute):
                continue
            deps = [d.call for d in route.dependant.dependencies]
            if not any(hasattr(call, "ui_action") for call in deps):
                raise RuntimeError(f"UI route {route.path} declares no guard(UiAction...): every page must")


def create_app(
    db_url: str | None = None,
    *,
    runs_dirs: Sequence[str | Path] = (),
    evals_dirs: Sequence[str | Path] = (),
    migrate: bool = False,
    allowed_hosts: Sequence[str] | None = DEFAULT_ALLOWED_HOSTS,
    secret: str | None = None,
    scan_on_start: bool = True,
) -> FastAPI:
    """The UI over `db_url`, `runs_dirs` (training runs) and `evals_dirs` (eval/bench outputs).

    `secret` signs session cookies (random when None: sessions end with the process);
    `allowed_hosts=None` disables the Host check."""
    from llmops.db.engine import read_only_session
    from llmops.db.migrate import prepare
    from llmops.feedback.auth import KeyVerifier
    from llmops.settings import database_url

    url = database_url(db_url)
    prepare(url, migrate)
    settings = UiSettings(url, tuple(Path(d).resolve() for d in runs_dirs), scan_on_start,
                          tuple(Path(d).resolve() for d in evals_dirs))
    pages = load_pages()

    @asynccontextmanager
    async def lifespan(app_: FastAPI) -> AsyncIterator[None]:
        for hook in app_.state.startup_hooks:
            hook(app_)
        yield

    app = FastAPI(title="llmops ui", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
    app.state.settings = settings
    app.state.codec = SessionCodec(secret or secrets.token_urlsafe(32))
    app.state.verifier = KeyVerifier(partial(read_only_session, url))
    app.state.nav = [m.NAV for m in pages if getattr(m, "NAV", None)]
    app.state.startup_hooks = [m.on_startup for m in pages if hasattr(m, "on_startup")]
    _check_guarded([m.router for m in pages])
    app.include_router(login.router)
    for module in pages:
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    _install_errors(app)

    @app.middleware("http")
    async def security_headers(request: Request, call_next) -> Response:
        response = await call_next(request)
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("X-Frame-Options", "DENY")
        if response.headers.get("content-type", "").startswith("text/html"):
            response.headers.setdefault("Cache-Control", "no-store")
        return response

    if allowed_hosts is not None:
        app.add_middleware(TrustedHostMiddleware, allowed_hosts=list(allowed_hosts))
    return app


def _install_errors(app: FastAPI) -> None:
    """Error pages: bad input 4xx, login redirects, 503 when the database is down, never a traceback."""

    @app.exception_handler(UiError)
    async def ui_error(request: Request, exc: UiError) -> Response:
        if isinstance(exc, LoginRequired) and request.method in ("GET", "HEAD"):
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)
        return render(request, "error.html", None, status=exc.status, message=exc.message)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        errs = exc.errors()
        first = errs[0] if errs else {"loc": ("query",), "msg": "invalid request"}
        where = ".".join(str(p) for p in first.get("loc", ()) if p not in ("query", "path", "body"))
        return render(request, "error.html", None, status=400, message=f"{where}: {first.get('msg')}")

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        return render(request, "error.html", None, status=exc.status_code, message=str(exc.detail))

    @app.exception_handler(DBAPIError)
    async def db_down(request: Request, exc: DBAPIError) -> Response:
        log.error("database error on %s: %s", request.url.path, type(exc.orig).__name__)
        return render(request, "error.html", None, status=503, message="the database is unavailable; retry shortly")


def app_from_env() -> FastAPI:
    """uvicorn factory for `llmops ui` (the CLI prepared the schema and set these variables)."""
    env = os.environ.get
    hosts = env("LLMOPS_UI_ALLOWED_HOSTS")
    runs = [p for p in env("LLMOPS_UI_RUNS_DIRS", "").split(os.pathsep) if p]
    evals = [p for p in env("LLMOPS_UI_EVALS_DIRS", "").split(os.pathsep) if p]
    return create_app(
        env("LLMOPS_DATABASE_URL"),
        runs_dirs=runs,
        evals_dirs=evals,
        allowed_hosts=[h.strip() for h in hosts.split(",") if h.strip()] if hosts else DEFAULT_ALLOWED_HOSTS,
        secret=env("LLMOPS_UI_SECRET"),
        scan_on_start=env("LLMOPS_UI_SCAN", "1") != "0",
    )

"""Application factory of the feedback service.

`create_app(db_url)` wires the routers, the error format, the body-size limit, the
trusted-host check, request ids, metrics, the key verifier (keys are checked before any
work is queued), the group committer every write goes through (started on first use,
drained on shutdown) and the rater page (static files from the top-level ``feedback/``
folder, served at ``/``). ``admin_api=False`` leaves out key management and exports
(what the model server mounts). ``benchmark_noop=True`` adds ``POST /bench/noop``
(authenticates and parses a rating, touches no database) as the throughput ceiling for
`benchmarks/feedback_load.py`; it is never enabled by ``llmops feedback serve`` unless
LLMOPS_FEEDBACK_BENCH_NOOP=1.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from functools import partial

from fastapi import Depends, FastAPI
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.middleware.trustedhost import TrustedHostMiddleware

from llmops.feedback import gc_pauses
from llmops.feedback.api import errors
from llmops.feedback.api.call import Call, call_for
from llmops.feedback.api.limits import BodySizeLimit
from llmops.feedback.api.request_id import RequestId, requests_served
from llmops.feedback.api.write_route import JSONWriteRoute
from llmops.feedback.api.routes import comparisons, export, guidelines, items, keys, ops, projects, ratings
from llmops.feedback.auth import AUTH_CACHE_TTL_S, KeyVerifier
from llmops.feedback.group_commit import MAX_BATCH, MAX_PER_OWNER, MAX_QUEUE, MAX_WAIT_S, GroupCommitter
from llmops.feedback.metrics import MetricsMiddleware
from llmops.feedback.policies import Action
from llmops.feedback.schemas import Created, RatingIn
from llmops.resources import path as resource_path
from llmops.errors import ConfigError
from llmops.settings import env_number

STATIC_DIR = resource_path("feedback")  # the rater page, shipped inside the package
from llmops.feedback.views import FeedbackOptions

# Loopback names only: a DNS-rebinding page (Host: attacker.example resolving to 127.0.0.1)
# is refused. Serving other names is an explicit choice (--allowed-host).
DEFAULT_ALLOWED_HOSTS = ("localhost", "127.0.0.1", "[::1]", "::1")
WRITERS = ("auto", "loop", "thread")


def make_committer(sessions, dialect: str, writer: str, *, max_batch: int, max_queue: int,
                   max_wait_s: float | None, max_per_owner: int, background_checkpoints: bool = True):
    """`auto`: statements on the event loop for SQLite (`loop_commit`), a writer thread for PostgreSQL.

    `max_wait_s=None` is each writer's own default (`loop_commit.GATHER_S`, `group_commit.MAX_WAIT_S`).
    """
    if writer not in WRITERS:
        raise ValueError(f"writer must be one of {WRITERS}, got {writer!r}")
    if writer == "loop" or (writer == "auto" and dialect == "sqlite"):
        if dialect != "sqlite":
            raise ValueError("the event-loop writer is for SQLite only (PostgreSQL statements may wait on locks)")
        from llmops.feedback.loop_commit import GATHER_S, LoopCommitter

        return LoopCommitter(sessions, max_batch=max_batch, max_queue=max_queue, max_per_owner=max_per_owner,
                             background_checkpoints=background_checkpoints,
                             max_wait_s=GATHER_S if max_wait_s is None else max_wait_s)
    return GroupCommitter(sessions, max_batch=max_batch, max_queue=max_queue, max_per_owner=max_per_owner,
                          max_wait_s=MAX_WAIT_S if max_wait_s is None else max_wait_s)


def create_app(
    db_url: str | None = None,
    *,
    migrate: bool = False,
    benchmark_noop: bool = False,
    max_batch: int = MAX_BATCH,
    max_queue: int = MAX_QUEUE,
    max_wait_s: float | None = None,
    max_per_owner: int = MAX_PER_OWNER,
    writer: str = "auto",
    allowed_hosts: Sequence[str] | None = DEFAULT_ALLOWED_HOSTS,
    admin_api: bool = True,
    rater_view: str = "blind",
    auth_ttl_s: float = AUTH_CACHE_TTL_S,
    freeze_gc: bool = False,
    background_checkpoints: bool = True,
) -> FastAPI:
    """The feedback API over `db_url` (see the module docstring).

    The schema must be current (`llmops.db.migrate.check_schema`) unless `migrate`, which
    upgrades it first under an advisory lock. `allowed_hosts=None` disables the Host
    check (only behind a proxy that does it). `max_*` and `writer` tune the group
    committer (`group_commit`, `loop_commit`). `freeze_gc` (what `llmops feedback serve`
    does) moves the start-up heap out of the collector's reach when the server starts, spaces
    young collections out (every 10,000 allocations instead of 700) and
    times every collection (`llmops.feedback.gc_pauses`): full collections of that heap
    took 30-300 ms here, a pause for every request in flight. `background_checkpoints`
    (SQLite's event-loop writer) runs WAL checkpoints in a thread of their own instead of
    inside a COMMIT (`llmops.feedback.wal_checkpoint`).
    """
    from llmops.db import get_engine, session_factory
    from llmops.db.engine import read_only_session
    from llmops.db.migrate import prepare

    if rater_view not in ("blind", "full"):
        raise ValueError(f"rater_view must be 'blind' or 'full', got {rater_view!r}")
    prepare(db_url, migrate)
    sessions = session_factory(db_url)
    committer = make_committer(sessions, get_engine(db_url).dialect.name, writer, max_batch=max_batch,
                               max_queue=max_queue, max_wait_s=max_wait_s, max_per_owner=max_per_owner,
                               background_checkpoints=background_checkpoints)
    read_sessions = partial(read_only_session, db_url)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        gc_pauses.watch()
        warm = None
        if freeze_gc:  # every import done, the app built; what the first requests build is frozen later
            gc_pauses.freeze_startup_heap()
            gc_pauses.space_young_collections()
            warm = asyncio.get_running_loop().create_task(gc_pauses.freeze_when_warm(requests_served))
        yield
        if warm is not None:
            warm.cancel()
        # The server stopped taking requests and answered the ones in flight: drain the rest.
        await committer.aclose()

    app = FastAPI(
        title="llmops feedback",
        version="1",
        description="Human feedback in (ratings, comparisons, critiques); preference data out.",
        lifespan=lifespan,
    )
    app.state.sessions = sessions
    app.state.read_sessions = read_sessions
    app.state.snapshot_sessions = partial(read_only_session, db_url, snapshot=True)
    app.state.committer = committer
    app.state.verifier = KeyVerifier(read_sessions, ttl_s=auth_ttl_s)
    app.state.options = FeedbackOptions(rater_view=rater_view)  # type: ignore[arg-type]
    errors.install(app)
    if benchmark_noop:  # first, like the ratings route it stands for: matched against no other route

        async def noop(body: RatingIn, call: Call = Depends(call_for(Action.RATINGS_CREATE))) -> JSONResponse:
            return JSONResponse({"id": 0}, status_code=201)

        app.router.add_api_route("/bench/noop", noop, methods=["POST"], status_code=201, response_model=Created,
                                 include_in_schema=False, route_class_override=JSONWriteRoute)  # as the ratings route

    # ratings first: the most frequent request, matched against fewer routes
    modules = [ratings, items, comparisons, projects, guidelines, ops] + ([export, keys] if admin_api else [])
    for module in modules:
        app.include_router(module.router)
    if admin_api:
        app.include_router(projects.admin_router)

    if STATIC_DIR.is_dir():
        app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

        @app.get("/", include_in_schema=False)
        def rater_page() -> FileResponse:
            return FileResponse(STATIC_DIR / "index.html")

    app.openapi = partial(_openapi_with_auth, app)  # type: ignore[method-assign]
    app.add_middleware(BodySizeLimit)
    app.add_middleware(MetricsMiddleware)
    if allowed_hosts is not None:
        app.add_middleware(TrustedHostMiddleware, allowed_hosts=list(allowed_hosts))
    app.add_middleware(RequestId)
    return app


def _openapi_with_auth(app: FastAPI) -> dict:
    """The schema, plus the bearer scheme and Idempotency-Key header that `call_for` reads directly."""
    from fastapi.openapi.utils import get_openapi

    from llmops.feedback.api.call import OPENAPI_AUTH

    if app.openapi_schema is None:
        schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        schema.setdefault("components", {})["securitySchemes"] = {
            "bearer": {"type": "http", "scheme": "bearer", "description": "API key from `llmops feedback keys create`"}
        }
        for path, operations in schema.get("paths", {}).items():
            if not path.startswith("/v1/"):
                continue
            for method, op in operations.items():
                op["security"] = OPENAPI_AUTH["security"]
                if method == "post":
                    op.setdefault("parameters", []).extend(OPENAPI_AUTH["parameters"])
        app.openapi_schema = schema
    return app.openapi_schema


def app_from_env() -> FastAPI:
    """uvicorn factory for `llmops feedback serve` (the CLI prepared the schema and set the URL).

    LLMOPS_FEEDBACK_MAX_BATCH, LLMOPS_FEEDBACK_MAX_QUEUE, LLMOPS_FEEDBACK_MAX_WAIT_MS,
    LLMOPS_FEEDBACK_MAX_PER_KEY and LLMOPS_FEEDBACK_WRITER tune the group committer (e.g.
    MAX_BATCH=1 gives one transaction per write, for comparison); LLMOPS_FEEDBACK_ALLOWED_HOSTS
    (comma-separated, ``*`` for any), LLMOPS_FEEDBACK_ADMIN_API=0 and LLMOPS_FEEDBACK_RATER_VIEW
    come from the CLI's flags. LLMOPS_FEEDBACK_FREEZE_GC=0 leaves the start-up heap to the
    collector and LLMOPS_FEEDBACK_CHECKPOINT=inline leaves WAL checkpoints inside COMMITs (both
    for comparison in `benchmarks/feedback_load.py`). LLMOPS_FEEDBACK_AUTH_TTL_S sets how long a
    key check is cached (default AUTH_CACHE_TTL_S): the longest a revoked key keeps working, traded
    against one database read per key per TTL.
    """
    env = os.environ.get
    hosts = env("LLMOPS_FEEDBACK_ALLOWED_HOSTS")
    wait_ms = env_number("LLMOPS_FEEDBACK_MAX_WAIT_MS", None, float, ConfigError)  # None: each writer's own default
    return create_app(
        env("LLMOPS_DATABASE_URL"),
        migrate=False,
        benchmark_noop=env("LLMOPS_FEEDBACK_BENCH_NOOP") == "1",
        max_batch=env_number("LLMOPS_FEEDBACK_MAX_BATCH", MAX_BATCH, error=ConfigError),
        max_queue=env_number("LLMOPS_FEEDBACK_MAX_QUEUE", MAX_QUEUE, error=ConfigError),
        max_wait_s=None if wait_ms is None else wait_ms / 1000,
        max_per_owner=env_number("LLMOPS_FEEDBACK_MAX_PER_KEY", MAX_PER_OWNER, error=ConfigError),
        writer=env("LLMOPS_FEEDBACK_WRITER", "auto"),
        allowed_hosts=[h.strip() for h in hosts.split(",") if h.strip()] if hosts else DEFAULT_ALLOWED_HOSTS,
        admin_api=env("LLMOPS_FEEDBACK_ADMIN_API", "1") != "0",
        rater_view=env("LLMOPS_FEEDBACK_RATER_VIEW", "blind"),
        freeze_gc=env("LLMOPS_FEEDBACK_FREEZE_GC", "1") != "0",
        background_checkpoints=env("LLMOPS_FEEDBACK_CHECKPOINT", "background") != "inline",
        auth_ttl_s=env_number("LLMOPS_FEEDBACK_AUTH_TTL_S", AUTH_CACHE_TTL_S, float, ConfigError),
    )

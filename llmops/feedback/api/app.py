"""Application factory of the feedback service.

`create_app(db_url)` wires the routers, the error format, the body-size limit, metrics,
the group committer every write goes through (started on first use, drained on
shutdown) and the rater page (static files from the top-level ``feedback/`` folder,
served at ``/``). ``benchmark_noop=True`` adds ``POST /bench/noop`` (parses a rating,
touches no database) as the throughput ceiling for `benchmarks/feedback_load.py`; it is
never enabled by ``llmops feedback serve`` unless LLMOPS_FEEDBACK_BENCH_NOOP=1.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from llmops.feedback.api import errors
from llmops.feedback.api.limits import BodySizeLimit
from llmops.feedback.api.routes import comparisons, export, items, keys, ops, ratings
from llmops.feedback.group_commit import MAX_BATCH, MAX_QUEUE, MAX_WAIT_S, GroupCommitter
from llmops.feedback.metrics import MetricsMiddleware
from llmops.feedback.schemas import Created, RatingIn
from llmops.resources import path as resource_path

STATIC_DIR = resource_path("feedback")  # the rater page, shipped inside the package


def create_app(
    db_url: str | None = None,
    *,
    migrate: bool = True,
    benchmark_noop: bool = False,
    max_batch: int = MAX_BATCH,
    max_queue: int = MAX_QUEUE,
    max_wait_s: float = MAX_WAIT_S,
) -> FastAPI:
    """The feedback API over `db_url`; `max_*` tune the group committer (see `group_commit`)."""
    from llmops.db import session_factory, upgrade
    from llmops.db.engine import read_only_session

    if migrate:
        upgrade(db_url)
    sessions = session_factory(db_url)
    committer = GroupCommitter(sessions, max_batch=max_batch, max_queue=max_queue, max_wait_s=max_wait_s)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        # The server stopped taking requests and answered the ones in flight: drain the rest.
        committer.close()

    app = FastAPI(
        title="llmops feedback",
        version="1",
        description="Human feedback in (ratings, comparisons, critiques); preference data out.",
        lifespan=lifespan,
    )
    app.state.sessions = sessions
    app.state.read_sessions = partial(read_only_session, db_url)
    app.state.committer = committer
    errors.install(app)
    for module in (items, ratings, comparisons, export, keys, ops):
        app.include_router(module.router)

    if benchmark_noop:

        @app.post("/bench/noop", status_code=201, response_model=Created, include_in_schema=False)
        async def noop(body: RatingIn) -> dict:
            return {"id": 0}

    if STATIC_DIR.is_dir():
        app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

        @app.get("/", include_in_schema=False)
        def rater_page() -> FileResponse:
            return FileResponse(STATIC_DIR / "index.html")

    app.add_middleware(BodySizeLimit)
    app.add_middleware(MetricsMiddleware)
    return app


def app_from_env() -> FastAPI:
    """uvicorn factory for `llmops feedback serve` (the CLI migrated already and set the URL).

    LLMOPS_FEEDBACK_MAX_BATCH, LLMOPS_FEEDBACK_MAX_QUEUE and LLMOPS_FEEDBACK_MAX_WAIT_MS tune
    the group committer (e.g. MAX_BATCH=1 gives one transaction per write, for comparison).
    """
    env = os.environ.get
    return create_app(
        env("LLMOPS_DATABASE_URL"),
        migrate=False,
        benchmark_noop=env("LLMOPS_FEEDBACK_BENCH_NOOP") == "1",
        max_batch=int(env("LLMOPS_FEEDBACK_MAX_BATCH", MAX_BATCH)),
        max_queue=int(env("LLMOPS_FEEDBACK_MAX_QUEUE", MAX_QUEUE)),
        max_wait_s=float(env("LLMOPS_FEEDBACK_MAX_WAIT_MS", MAX_WAIT_S * 1000)) / 1000,
    )

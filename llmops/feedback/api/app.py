"""Application factory of the feedback service.

`create_app(db_url)` wires the routers, the error format, the body-size limit, metrics
and the rater page (static files from the top-level ``feedback/`` folder, served at
``/``). ``benchmark_noop=True`` adds ``POST /bench/noop`` (parses a rating, touches no
database) as the throughput ceiling for `benchmarks/feedback_load.py`; it is never
enabled by ``llmops feedback serve`` unless LLMOPS_FEEDBACK_BENCH_NOOP=1.
"""

from __future__ import annotations

import os
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from llmops.feedback.api import errors
from llmops.feedback.api.limits import BodySizeLimit
from llmops.feedback.api.routes import comparisons, export, items, keys, ops, ratings
from llmops.feedback.metrics import MetricsMiddleware
from llmops.feedback.schemas import Created, RatingIn

STATIC_DIR = Path(__file__).resolve().parents[3] / "feedback"


def create_app(db_url: str | None = None, *, migrate: bool = True, benchmark_noop: bool = False) -> FastAPI:
    from llmops.db import session_factory, upgrade

    if migrate:
        upgrade(db_url)
    app = FastAPI(
        title="llmops feedback",
        version="1",
        description="Human feedback in (ratings, comparisons, critiques); preference data out.",
    )
    app.state.sessions = session_factory(db_url)
    errors.install(app)
    for module in (items, ratings, comparisons, export, keys, ops):
        app.include_router(module.router)

    if benchmark_noop:

        @app.post("/bench/noop", status_code=201, response_model=Created, include_in_schema=False)
        def noop(body: RatingIn) -> dict:
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
    """uvicorn factory for `llmops feedback serve` (the CLI migrated already and set the URL)."""
    return create_app(
        os.environ.get("LLMOPS_DATABASE_URL"),
        migrate=False,
        benchmark_noop=os.environ.get("LLMOPS_FEEDBACK_BENCH_NOOP") == "1",
    )

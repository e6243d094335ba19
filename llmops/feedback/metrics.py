"""Prometheus metrics of the feedback service.

With several uvicorn workers, `llmops feedback serve` points PROMETHEUS_MULTIPROC_DIR
at a fresh directory so that `/metrics` aggregates every worker, not just the one
that happened to answer the scrape.
"""

from __future__ import annotations

import os
import time

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest

REQUESTS = Counter(
    "llmops_feedback_requests_total", "HTTP requests answered", ["method", "route", "status"]
)
LATENCY = Histogram(
    "llmops_feedback_request_seconds",
    "Time to answer a request",
    ["route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
WRITES = Counter("llmops_feedback_writes_total", "Writes committed and acknowledged", ["kind"])
REPLAYS = Counter("llmops_feedback_idempotent_replays_total", "Writes answered from an idempotency record")
BATCH_SIZE = Histogram(
    "llmops_feedback_group_commit_batch_size",
    "Writes applied per group-commit transaction (one fsync each)",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512),
)
COMMIT_SECONDS = Histogram(
    "llmops_feedback_commit_seconds",
    "Duration of one group-commit COMMIT (the fsync, and any WAL checkpoint SQLite runs in it)",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
)
GC_PAUSE = Histogram(
    "llmops_gc_pause_seconds",
    "Garbage-collector pauses of this process (every request waits while one runs)",
    ["generation"],
    buckets=(0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25),
)
GC_WARM_FREEZES = Counter("llmops_gc_warm_freezes", "Heap freezes after the first requests (gc_pauses.freeze_when_warm)")
GC_CPU = Counter("llmops_gc_cpu_seconds", "CPU time spent in garbage collections", ["generation"])


def render() -> tuple[bytes, str]:
    """The exposition text (aggregated across workers in multiprocess mode)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST


class MetricsMiddleware:
    """Counts and times every request by route template (not raw path: ids would explode cardinality)."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_wrapper(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            name = getattr(route, "path", None) or "unmatched"
            method = scope["method"] if scope["method"] in _METHODS else "OTHER"
            key = (method, name, status)
            series = _series.get(key)
            if series is None:  # `labels()` takes a lock and checks its values: once per series, not per request
                series = _series[key] = (REQUESTS.labels(method, name, str(status)), LATENCY.labels(name))
            series[0].inc()
            series[1].observe(time.perf_counter() - start)


# A client's made-up method must not create a series of its own (one per string it sends).
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_series: dict[tuple[str, str, int], tuple] = {}  # bounded: methods x route templates x statuses

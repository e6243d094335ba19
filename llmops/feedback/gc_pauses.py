"""Garbage-collector pauses of a serving process: freeze the start-up heap, time every collection.

Why: after importing FastAPI, SQLAlchemy and pydantic a worker holds ~140k GC-tracked
objects. A full (generation 2) collection walks all of them: 30-300 ms measured here,
with every request in the process waiting. Objects that merely outlive two young
collections (requests in flight at that moment) accumulate until CPython runs such a
collection, so under steady load they come every few seconds — tail latency even for
the no-op endpoint. `freeze_startup_heap` moves everything alive at start-up to the
permanent generation (`gc.freeze`, the approach of Instagram's Django fleet): those
objects are never scanned again; reference counting still frees them normally, and
cycles created while serving are still collected. `watch` records each collection's
duration in `llmops_gc_pause_seconds` so the load benchmark can show the pauses instead
of guessing.
"""

from __future__ import annotations

import gc
import time

from llmops.feedback import metrics

_started: list[float] = [0.0, 0.0]  # wall clock, this thread's CPU clock
_installed: list[bool] = [False]


def _callback(phase: str, info: dict) -> None:
    if phase == "start":
        _started[0], _started[1] = time.perf_counter(), time.thread_time()
    elif _started[0]:
        generation = str(info.get("generation", "?"))
        metrics.GC_PAUSE.labels(generation).observe(time.perf_counter() - _started[0])
        # CPU time does not grow when other processes take the core: comparable on a busy machine.
        metrics.GC_CPU.labels(generation).inc(time.thread_time() - _started[1])
        _started[0] = 0.0


def watch() -> None:
    """Time every collection of this process (idempotent)."""
    if not _installed[0]:
        gc.callbacks.append(_callback)
        _installed[0] = True


def freeze_startup_heap() -> int:
    """Collect once, then exclude every surviving object from future collections; returns how many."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()

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

The heap is not complete at start-up, though: the first requests build Starlette's
middleware stack, FastAPI's and pydantic's per-route validators, SQLAlchemy's compiled
statements and lazily imported modules. Measured at 1,000 requests/s on SQLite, full
collections in the first two seconds took 50-100 ms of CPU each, and 5-17 ms each in
steady state, with the event loop stalled throughout. `freeze_when_warm` freezes again
after the first 1,000, 10,000 and 100,000 requests (with no collection: `gc.freeze()`
alone costs no pause), so what those requests built leaves the collector's reach too.
The price is that cyclic garbage alive at those three instants is never collected: a
few thousand objects, once.

Young collections are spaced out too (`space_young_collections`). CPython collects
generation 0 after every 700 net container allocations; a rating's objects stay alive
until its batch commits, so at 1,000 ratings/s that was ~160 collections a second, each
scanning the requests in flight and promoting them towards the older generations, where
they cost again (in-process, 8,000 ratings: 1,314 young, 118 middle and 10 full
collections). Every 10,000 allocations instead: 8 young collections, none older, and
0.84-0.98 -> 0.71-0.78 ms of CPU per rating, side by side. A young collection then walks
at most ~10,000 objects: well under a millisecond.
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Callable

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


YOUNG_COLLECTION_EVERY = 10_000  # net container allocations (CPython's default: 700)


def space_young_collections(every: int = YOUNG_COLLECTION_EVERY) -> None:
    """Collect generation 0 after `every` net allocations; the older generations' ratios are kept."""
    _, middle, old = gc.get_threshold()
    gc.set_threshold(every, middle, old)


WARM_FREEZES = (1_000, 10_000, 100_000)


async def freeze_when_warm(requests_served: Callable[[], int], at: tuple[int, ...] = WARM_FREEZES,
                           poll_s: float = 1.0) -> None:
    """Run in the serving process's event loop: `gc.freeze()` once `requests_served()` reaches each of `at`."""
    for threshold in at:
        while requests_served() < threshold:
            await asyncio.sleep(poll_s)
        gc.freeze()
        metrics.GC_WARM_FREEZES.inc()

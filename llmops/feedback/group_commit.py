"""Group commit: many concurrent writes, one transaction, one fsync, each acknowledged after it.

With ``synchronous=FULL`` (SQLite) or ``synchronous_commit=on`` (PostgreSQL) every
COMMIT waits for the disk, so one transaction per request caps the store at the disk's
fsyncs per second (~190/s measured on SQLite here). `GroupCommitter` keeps durability
and amortises the fsync instead: requests hand a unit of work to ONE writer thread,
which applies everything queued (up to `max_batch`) in one transaction, each unit in
its own SAVEPOINT so that a bad one (unique violation, unknown id, scale check) is
rolled back alone and fails with its own error, then COMMITs once. Only after that
COMMIT returns are the requests' futures resolved; a failed COMMIT fails every request
of the batch (nothing in it was acknowledged).

Back-pressure: the queue holds at most `max_queue` units; `submit` raises `Overloaded`
(HTTP 503 with Retry-After) beyond that, so a burst never grows an unbounded backlog.
`close()` stops intake and drains what is queued before the writer exits.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy.orm import Session, sessionmaker

from llmops.feedback import metrics
from llmops.feedback.errors import Overloaded, Unavailable

log = logging.getLogger(__name__)
T = TypeVar("T")

MAX_BATCH = 256  # units per transaction: bounds the transaction's size and the writer's lock hold
MAX_QUEUE = 2_048  # units waiting; beyond this submit() answers 503 instead of queueing
MAX_WAIT_S = 0.0  # extra wait for a fuller batch; 0 = take what queued up during the last commit


@dataclass
class GroupCommitStats:
    """Counters of the writer (read by tests and the benchmark; Prometheus has the histogram)."""

    batches: int = 0  # transactions attempted
    commits: int = 0  # transactions committed
    failed_commits: int = 0
    units: int = 0  # units applied (committed or failed alone)
    rejected: int = 0  # submits refused with Overloaded
    largest_batch: int = 0
    busy_s: float = 0.0  # time spent applying and committing batches


class _Abort(Exception):
    """A savepoint could not be rolled back: the transaction itself is broken."""


@dataclass
class _Unit(Generic[T]):
    work: Callable[[Session], T]
    future: Future


class GroupCommitter:
    """One writer thread applying queued units of work in shared, savepointed transactions.

    ``work(session)`` runs inside a SAVEPOINT of the batch's transaction and must not
    commit; its return value (or exception) becomes the future's result once the batch
    has committed. Any exception fails only that unit, unless rolling back its savepoint
    fails too, which aborts (and fails) the whole batch.
    """

    def __init__(
        self,
        sessions: sessionmaker[Session],
        *,
        max_batch: int = MAX_BATCH,
        max_queue: int = MAX_QUEUE,
        max_wait_s: float = MAX_WAIT_S,
        name: str = "feedback-group-commit",
    ) -> None:
        if max_batch < 1 or max_queue < 1 or max_wait_s < 0:
            raise ValueError("max_batch and max_queue must be >= 1, max_wait_s >= 0")
        self._sessions = sessions
        self.max_batch, self.max_queue, self.max_wait_s = max_batch, max_queue, max_wait_s
        self.stats = GroupCommitStats()
        self._queue: deque[_Unit] = deque()
        self._cond = threading.Condition()
        self._closed = False
        self._thread: threading.Thread | None = None
        self._name = name

    # ------------------------------------------------------------ intake

    def submit(self, work: Callable[[Session], T]) -> Future[T]:
        """Queue `work`; the future resolves after the COMMIT that made it durable."""
        unit = _Unit(work, Future())
        with self._cond:
            if self._closed:
                raise Unavailable("the server is shutting down; nothing was stored, retry")
            if len(self._queue) >= self.max_queue:
                self.stats.rejected += 1
                raise Overloaded(f"write queue full ({self.max_queue} waiting); nothing was stored, retry")
            if self._thread is None:  # started lazily: apps built without a lifespan still work
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()
            self._queue.append(unit)
            self._cond.notify()
        return unit.future

    async def run(self, work: Callable[[Session], T]) -> T:
        """`submit` and await the durable result without blocking the event loop."""
        return await asyncio.wrap_future(self.submit(work))

    def queued(self) -> int:
        with self._cond:
            return len(self._queue)

    def close(self, timeout: float | None = 30.0) -> None:
        """Refuse new work, apply everything already queued, stop the writer."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join(timeout)
            if thread.is_alive():
                log.error("group-commit writer did not drain within %ss", timeout)

    # ------------------------------------------------------------ writer

    def _next_batch(self) -> list[_Unit] | None:
        with self._cond:
            while not self._queue:
                if self._closed:
                    return None
                self._cond.wait()
            if self.max_wait_s and len(self._queue) < self.max_batch and not self._closed:
                deadline = time.monotonic() + self.max_wait_s
                self._cond.wait_for(
                    lambda: len(self._queue) >= self.max_batch or self._closed,
                    timeout=max(0.0, deadline - time.monotonic()),
                )
            n = min(self.max_batch, len(self._queue))
            return [self._queue.popleft() for _ in range(n)]

    def _run(self) -> None:
        while (batch := self._next_batch()) is not None:
            live = [u for u in batch if u.future.set_running_or_notify_cancel()]
            if live:
                try:
                    self._apply_batch(live)
                except BaseException as exc:  # noqa: BLE001 - never leave a request waiting forever
                    log.exception("group-commit writer failed")
                    for u in live:
                        if not u.future.done():
                            u.future.set_exception(exc)

    def _apply_batch(self, batch: list[_Unit]) -> None:
        started = time.perf_counter()
        try:
            self._apply_and_commit(batch)
        finally:
            self.stats.busy_s += time.perf_counter() - started

    def _apply_and_commit(self, batch: list[_Unit]) -> None:
        self.stats.batches += 1
        self.stats.largest_batch = max(self.stats.largest_batch, len(batch))
        metrics.BATCH_SIZE.observe(len(batch))
        outcomes: list[tuple[bool, Any]] = []
        try:
            with self._sessions() as session:
                with session.begin():
                    for unit in batch:
                        outcomes.append(self._apply_unit(session, unit.work))
                # The context manager committed: every unit of the batch is durable now.
        except Exception as exc:  # noqa: BLE001
            self.stats.failed_commits += 1
            log.error("group commit of %d writes failed: %s", len(batch), exc)
            error = Unavailable("the database could not commit this write; nothing was stored, retry")
            error.__cause__ = exc
            for unit in batch:
                unit.future.set_exception(error)
            return
        self.stats.commits += 1
        self.stats.units += len(batch)
        for unit, (ok, value) in zip(batch, outcomes):
            if ok:
                unit.future.set_result(value)
            else:
                unit.future.set_exception(value)

    @staticmethod
    def _apply_unit(session: Session, work: Callable[[Session], Any]) -> tuple[bool, Any]:
        savepoint = session.begin_nested()
        try:
            value = work(session)
            savepoint.commit()  # flushes, then RELEASE: constraint violations surface here
        except Exception as exc:  # noqa: BLE001 - the unit's own failure, reported to its request
            try:
                savepoint.rollback()
            except Exception as fatal:
                raise _Abort("could not roll back a failed write's savepoint") from fatal
            return False, exc
        return True, value

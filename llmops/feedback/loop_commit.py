"""Group commit on the event loop: statements run on the loop, only BEGIN and COMMIT in a thread.

Why: with a writer *thread* (`llmops.feedback.group_commit.GroupCommitter`) every
SQLite call releases the GIL and must win it back from the busy event loop, which
holds it for up to ``sys.getswitchinterval()`` (5 ms) at a time — dozens of hand-offs
per batch (the "convoy effect"): at 500 ratings/s on an idle machine the old writer had
a p50 of ~100 ms although each COMMIT took 0.3 ms. Here a batch costs one or two hand-offs:

1. ``BEGIN IMMEDIATE`` on the loop when the write lock is free (it fails at once otherwise,
   ``sqlite_begin_nowait``), else in the commit thread, which waits for another process's lock;
2. each unit's statements on the loop, each in its own SAVEPOINT — with the write lock
   held nothing in them can wait on another connection, so the loop never blocks on a lock;
3. ``COMMIT`` (the fsync) in the commit thread, while new requests queue up for the next batch.

Only for SQLite: on PostgreSQL a statement can wait on a row lock or the network, which
must never stall the loop, so PostgreSQL keeps the thread writer. Same contract as the
thread writer: a unit is acknowledged after the COMMIT that made it durable, the queue
and each owner's share are bounded, a failure before COMMIT is "nothing stored", one
during COMMIT is "outcome unknown", and a dead writer task is replaced.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from llmops.feedback import metrics, wal_checkpoint
from llmops.feedback.errors import Unavailable
from llmops.feedback.group_commit import (
    HANG_AFTER_S,
    MAX_BATCH,
    MAX_PER_OWNER,
    MAX_QUEUE,
    Intake,
    _Unit,
    discard,
)

log = logging.getLogger(__name__)
T = TypeVar("T")


class LoopCommitter:
    """One writer task on the running event loop; see the module docstring."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        *,
        max_batch: int = MAX_BATCH,
        max_queue: int = MAX_QUEUE,
        max_per_owner: int = MAX_PER_OWNER,
        hang_after_s: float = HANG_AFTER_S,
        background_checkpoints: bool = True,
    ) -> None:
        self._sessions = sessions
        self.intake = Intake(max_batch, max_queue, max_per_owner, hang_after_s)
        self.stats = self.intake.stats
        self.max_batch, self.max_queue = max_batch, max_queue
        self._pending: deque[_Unit] = deque()
        self._inflight: list[_Unit] = []
        self._closed = False
        self._task: asyncio.Task | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        # A dedicated thread: a COMMIT never waits behind request handlers in the default pool.
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="feedback-commit")
        # WAL checkpoints in a thread of their own, not inside a COMMIT (`wal_checkpoint`).
        bind = sessions.kw.get("bind")
        self.checkpointer = wal_checkpoint.for_engine(bind) if background_checkpoints and bind is not None else None

    # ------------------------------------------------------------ intake

    async def run(self, work: Callable[[Session], T], owner: str | None = None) -> T:
        """Queue `work` and return its result once the batch holding it has committed."""
        if self._closed:
            raise Unavailable("the server is shutting down; nothing was stored, retry")
        loop = asyncio.get_running_loop()
        self.intake.admit(owner, len(self._pending))
        unit = _Unit(work, loop.create_future(), owner)
        self.intake.track(unit)
        self._pending.append(unit)
        self._ensure_writer(loop)
        self._wake.set()
        # No polling: a writer task that dies is replaced by its done-callback, which fails
        # the batch it held (outcome unknown), so this await always ends.
        return await unit.future

    def queued(self) -> int:
        return len(self._pending)

    def health(self) -> dict[str, Any]:
        task = self._task
        alive = task is None or not task.done() or self._closed
        return {"writer": "event-loop", "alive": alive, "hung": self.intake.hung(), "queued": self.queued(),
                "restarts": self.stats.restarts}

    async def aclose(self) -> None:
        """Refuse new work, commit everything queued, stop the writer."""
        self._closed = True
        if self._wake is not None:
            self._wake.set()
        if self._task is not None and not self._task.done() and self._loop is asyncio.get_running_loop():
            await self._task
        self._executor.shutdown(wait=True)
        if self.checkpointer is not None:
            await asyncio.get_running_loop().run_in_executor(None, self.checkpointer.close)

    def close(self) -> None:
        """Synchronous close for callers without a loop: nothing can be queued afterwards."""
        self._closed = True
        if self._wake is not None and self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._wake.set)

    # ------------------------------------------------------------ writer

    def _ensure_writer(self, loop: asyncio.AbstractEventLoop) -> None:
        task = self._task
        if task is not None and not task.done() and self._loop is loop:
            return
        if task is not None and self._loop is loop:  # it died: fail what it held, start another
            self.stats.restarts += 1
            log.error("feedback writer task died (%s); starting a new one",
                      "cancelled" if task.cancelled() else type(task.exception()).__name__)
            lost, self._inflight = self._inflight, []
            if lost:
                self.intake.fail(lost, RuntimeError("writer task died"), committing=True)
            self.intake.batch_started = None
        self._loop, self._wake = loop, asyncio.Event()
        self._task = loop.create_task(self._writer(), name="feedback-loop-commit")
        self._task.add_done_callback(self._writer_done)

    def _writer_done(self, task: asyncio.Task) -> None:
        """Replace a writer task that ended while the committer is open (a bug, a cancellation)."""
        if self._closed or task is not self._task or self._loop is None or self._loop.is_closed():
            return
        if not self._pending and not self._inflight:
            return  # idle (e.g. the loop is shutting down): the next `run` starts a writer if needed
        self._ensure_writer(self._loop)
        if self._pending:
            self._wake.set()

    async def _writer(self) -> None:
        while True:
            while not self._pending:
                if self._closed:
                    return
                self._wake.clear()
                await self._wake.wait()
            n = min(self.max_batch, len(self._pending))
            batch = [self._pending.popleft() for _ in range(n)]
            self._inflight = batch
            await self._commit(batch)
            self._inflight = []

    def _begin_now(self) -> tuple[Session, Any]:
        """(session, its connection in a write transaction) if the write lock is free right now, else
        (a fresh session, None): BEGIN on the loop saves a thread hop per batch (with the loop busy,
        each hop waits behind the ready requests: a batch cycle was two such waits), and it never
        waits on the loop, because it fails at once when another process holds the lock."""
        session = self._sessions()
        try:
            return session, session.connection(execution_options={"sqlite_begin_nowait": True})
        except OperationalError:  # "database is locked": the thread waits for it instead
            session.close()
            return self._sessions(), None

    async def _commit(self, batch: list[_Unit]) -> None:
        loop = asyncio.get_running_loop()
        started = time.perf_counter()
        self.intake.batch_started = time.monotonic()
        self.stats.batches += 1
        self.stats.largest_batch = max(self.stats.largest_batch, len(batch))
        metrics.BATCH_SIZE.observe(len(batch))
        session, connection = self._begin_now()
        committed = False
        try:
            try:
                if connection is None:  # another process holds the write lock: wait for it off the loop
                    connection = await loop.run_in_executor(self._executor, session.connection)  # BEGIN IMMEDIATE
                if self.checkpointer is not None:
                    self.checkpointer.prepare(connection.connection)
                outcomes = self.intake.apply_batch(session, [unit.work for unit in batch])
            except Exception as exc:  # noqa: BLE001 - nothing was committed
                self.intake.fail(batch, exc, committing=False)
                return
            try:
                commit_started = time.perf_counter()
                await loop.run_in_executor(self._executor, session.commit)  # the fsync, off the loop
                metrics.COMMIT_SECONDS.observe(time.perf_counter() - commit_started)
            except Exception as exc:  # noqa: BLE001 - the COMMIT failed in flight: it may have landed
                await loop.run_in_executor(self._executor, discard, session)
                self.intake.fail(batch, exc, committing=True)
                return
            committed = True
            self.intake.settle(batch, outcomes)
            if self.checkpointer is not None:
                self.checkpointer.after_commit()
        finally:
            if committed:  # nothing to roll back: returning the connection is instant
                session.close()
            else:
                await loop.run_in_executor(self._executor, session.close)
            self.intake.batch_started = None
            self.stats.busy_s += time.perf_counter() - started

"""Group commit on the event loop: statements on the loop, COMMIT (and a waiting BEGIN) in a thread.

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

All of it on one connection the writer keeps (no pool checkout or new transaction machinery
per batch), and, while writes stream in, a small batch waits `GATHER_S` for more: a batch's
own cost on the loop (BEGIN, the thread hop, waking up) is then shared by several writes.

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
from functools import partial
from typing import Any, TypeVar

from sqlalchemy.engine import Connection, Transaction
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
)

log = logging.getLogger(__name__)
T = TypeVar("T")
GATHER_S = 0.001  # while writes stream in, a small batch waits this long for more (`LoopCommitter._streaming`)
GATHER_BELOW = 4  # ... when fewer than this many are queued (beyond that a batch's own cost is small per write)


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
        max_wait_s: float = GATHER_S,
    ) -> None:
        if max_wait_s < 0:
            raise ValueError("max_wait_s must be >= 0")
        self._sessions = sessions
        self.max_wait_s = max_wait_s  # how long a small batch waits for more while writes stream in
        self._last_commit = float("-inf")  # when the last batch ended (monotonic)
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
        bind = self._engine = sessions.kw.get("bind")
        self._connection: Connection | None = None  # the writer's own, opened on first use (`_begin_now`)
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
            self._drop_connection(invalidate=bool(lost))  # its transaction may be open: never reuse it
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
                    self._drop_connection()  # idle, no transaction open: back to the pool at once
                    return
                self._wake.clear()
                await self._wake.wait()
            if self._streaming():  # let the next writes join this batch: one BEGIN, COMMIT and thread hop for all
                await asyncio.sleep(self.max_wait_s)
            n = min(self.max_batch, len(self._pending))
            batch = [self._pending.popleft() for _ in range(n)]
            self._inflight = batch
            await self._commit(batch)
            self._inflight = []

    def _streaming(self) -> bool:
        """Writes are streaming in and this batch would be small: worth waiting `max_wait_s` for more.

        A batch costs the loop ~0.2 ms beyond its writes (BEGIN, the COMMIT's thread hop, waking
        up); at 1,000 ratings/s a batch formed during one ~0.5 ms COMMIT holds ~1.1 ratings, so
        that cost was paid per rating. Waiting 1 ms while writes keep coming made batches ~2.4
        and the loop's CPU per rating ~30 % lower (benchmarks/feedback_load.py). An idle writer,
        a write that arrives alone or a batch already big enough does not wait: like PostgreSQL's
        ``commit_delay``, which applies only while other transactions are active.
        """
        return (self.max_wait_s > 0 and len(self._pending) < GATHER_BELOW and not self._closed
                and time.monotonic() - self._last_commit < self.max_wait_s)

    def _begin_now(self) -> Transaction | None:
        """The write transaction on the writer's own connection if the lock is free right now, else
        None: BEGIN on the loop saves a thread hop per batch (with the loop busy, each hop waits
        behind the ready requests), and it never waits on the loop, because it fails at once when
        another process holds the lock (``sqlite_begin_nowait``)."""
        if self._connection is None:
            # One connection for the writer's life, not a pool checkout and a new Session's own
            # BEGIN per batch: that was ~0.1 ms of the loop per batch, more than the INSERTs.
            self._adopt(self._engine.connect())
        try:
            return self._connection.begin()
        except OperationalError:  # "database is locked": the thread waits for it on a fresh connection
            self._drop_connection()  # a BEGIN that failed half-way: never reuse that connection
            return None

    def _begin_waiting(self) -> tuple[Connection, Transaction]:
        """(In the commit thread.) BEGIN IMMEDIATE on a pooled connection, waiting up to busy_timeout."""
        connection = self._engine.connect()
        try:
            return connection, connection.begin()
        except BaseException:
            connection.close()
            raise

    def _adopt(self, connection: Connection) -> None:
        """Make `connection` the writer's: its later BEGINs never wait, and it never checkpoints in a COMMIT."""
        connection.execution_options(sqlite_begin_nowait=True)  # in place; read at the next BEGIN
        if self.checkpointer is not None:
            self.checkpointer.prepare(connection.connection)
        self._connection = connection

    def _drop_connection(self, *, invalidate: bool = False) -> None:
        """Close the writer's connection (back to the pool, rolled back), or invalidate it after a
        COMMIT that failed in flight (never reuse a connection in an unknown state)."""
        connection, self._connection = self._connection, None
        if connection is not None:
            _close(connection, invalidate=invalidate)

    async def _commit(self, batch: list[_Unit]) -> None:
        loop = asyncio.get_running_loop()
        started = time.perf_counter()
        self.intake.batch_started = time.monotonic()
        self.stats.batches += 1
        self.stats.largest_batch = max(self.stats.largest_batch, len(batch))
        metrics.BATCH_SIZE.observe(len(batch))
        session: Session | None = None
        committed = False
        try:
            try:
                transaction = self._begin_now()
                if transaction is None:  # another process holds the write lock: wait for it off the loop
                    connection, transaction = await loop.run_in_executor(self._executor, self._begin_waiting)
                    self._adopt(connection)
                # The units see an ordinary Session; the transaction (and its COMMIT) stays the writer's.
                session = self._sessions(bind=self._connection, join_transaction_mode="rollback_only")
                outcomes = self.intake.apply_batch(session, [unit.work for unit in batch])
            except Exception as exc:  # noqa: BLE001 - nothing was committed
                self.intake.fail(batch, exc, committing=False)
                return
            try:
                commit_started = time.perf_counter()
                await loop.run_in_executor(self._executor, _flush_and_commit, session, transaction)  # the fsync
                metrics.COMMIT_SECONDS.observe(time.perf_counter() - commit_started)
            except Exception as exc:  # noqa: BLE001 - the COMMIT failed in flight: it may have landed
                await loop.run_in_executor(self._executor, partial(self._drop_connection, invalidate=True))
                self.intake.fail(batch, exc, committing=True)
                return
            committed = True
            self.intake.settle(batch, outcomes)
            if self.checkpointer is not None:
                self.checkpointer.after_commit()
        finally:
            if session is not None:
                session.close()  # its objects only: the connection is the writer's
            if not committed and self._connection is not None:  # roll back off the loop; the next batch reconnects
                await loop.run_in_executor(self._executor, self._drop_connection)
            self.intake.batch_started = None
            self._last_commit = time.monotonic()
            self.stats.busy_s += time.perf_counter() - started


def _flush_and_commit(session: Session, transaction: Transaction) -> None:
    session.flush()  # units flush in their savepoints; anything left is written before the COMMIT
    transaction.commit()


def _close(connection: Connection, *, invalidate: bool) -> None:
    try:
        if invalidate:
            connection.invalidate()
        connection.close()
    except Exception:  # noqa: BLE001 - it is being thrown away anyway
        log.debug("could not close the writer's connection", exc_info=True)

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
(HTTP 503 with Retry-After) beyond that, so a burst never grows an unbounded backlog,
and one caller (``owner``, the API key) holds at most `max_per_owner` of them
(`TooManyRequests`, 429): a flooding key is slowed down, the others keep their 2xx.
`close()` stops intake and drains what is queued before the writer exits.

Honest failures: an error before COMMIT fails the batch with "nothing was stored"; an
error *during* COMMIT (the connection died with the COMMIT in flight) fails it with
`OutcomeUnknown` ("retry with the same Idempotency-Key"), because the database may
have committed. Liveness: a writer thread that died is restarted on the next submit
(the batch it held fails as outcome-unknown), and `health()` reports a batch running
longer than `hang_after_s` so /readyz can take the server out of rotation.

`llmops.feedback.loop_commit.LoopCommitter` is the same contract with the statements on
the event loop and only BEGIN/COMMIT in a thread (SQLite's fast path).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy.orm import Session, sessionmaker

from llmops.db.prepared import driver_sql
from llmops.feedback import metrics
from llmops.feedback.errors import OutcomeUnknown, Overloaded, TooManyRequests, Unavailable

log = logging.getLogger(__name__)
T = TypeVar("T")

MAX_BATCH = 256  # units per transaction: bounds the transaction's size and the writer's lock hold
MAX_QUEUE = 2_048  # units waiting; beyond this submit() answers 503 instead of queueing
MAX_WAIT_S = 0.0  # extra wait for a fuller batch; 0 = take what queued up during the last commit
MAX_PER_OWNER = 256  # units one caller (API key) may have queued or in flight
WATCH_S = 0.5  # how often a waiting request checks that the writer is alive
HANG_AFTER_S = 15.0  # a batch running longer than this makes the writer unhealthy (readiness fails)
CAREFUL_BATCHES = 20  # after a failed unit, batches applied unit by unit before trying all-at-once again
NOTHING_STORED = "the database could not complete this write; nothing was stored, retry"
OUTCOME_UNKNOWN = (
    "outcome unknown: the database failed while committing this write; retry with the same Idempotency-Key "
    "(the retry returns the stored answer if it was committed)"
)


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
    throttled: int = 0  # submits refused because the owner had its whole share queued
    outcome_unknown: int = 0  # batches whose COMMIT failed in flight
    restarts: int = 0  # dead writers replaced
    together: int = 0  # batches applied in one savepoint, savepoint-free per unit
    reapplied: int = 0  # of those, batches rolled back and re-applied unit by unit (one unit failed)


class _Abort(Exception):
    """A savepoint could not be rolled back: the transaction itself is broken."""


@dataclass
class _Unit(Generic[T]):
    work: Callable[[Session], T]
    future: Future
    owner: str | None = None


def discard(session: Session) -> None:
    """After a failed COMMIT: drop the connection (never reuse one in an unknown state)."""
    try:
        if session.in_transaction():
            session.connection().invalidate()
    except Exception:  # noqa: BLE001 - it is being thrown away anyway
        log.debug("could not invalidate the connection of a failed commit", exc_info=True)
    try:
        session.rollback()
    except Exception:  # noqa: BLE001
        log.debug("rollback after a failed commit failed", exc_info=True)


class Intake:
    """Admission shared by both committers: queue bound, per-owner share, stats, batch clock."""

    def __init__(self, max_batch: int, max_queue: int, max_per_owner: int, hang_after_s: float) -> None:
        if max_batch < 1 or max_queue < 1 or max_per_owner < 1 or hang_after_s <= 0:
            raise ValueError("max_batch, max_queue and max_per_owner must be >= 1, hang_after_s > 0")
        self.max_batch, self.max_queue, self.max_per_owner = max_batch, max_queue, max_per_owner
        self.hang_after_s = hang_after_s
        self.stats = GroupCommitStats()
        self._owned: dict[str, int] = {}
        self._owned_lock = threading.Lock()
        self.batch_started: float | None = None  # monotonic start of the batch in progress
        self._careful_until = 0  # `stats.batches` before which batches are applied unit by unit

    def admit(self, owner: str | None, queued: int) -> None:
        """Raise unless one more unit of `owner` fits (call under the queue's lock)."""
        if queued >= self.max_queue:
            self.stats.rejected += 1
            raise Overloaded(f"write queue full ({self.max_queue} waiting); nothing was stored, retry")
        if owner is not None:
            with self._owned_lock:
                if self._owned.get(owner, 0) >= self.max_per_owner:
                    self.stats.throttled += 1
                    raise TooManyRequests(
                        f"this API key has {self.max_per_owner} writes in flight; wait for their answers "
                        "(nothing was stored, retry)"
                    )
                self._owned[owner] = self._owned.get(owner, 0) + 1

    def track(self, unit: _Unit) -> None:
        if unit.owner is not None:
            unit.future.add_done_callback(lambda _f, owner=unit.owner: self._release(owner))

    def _release(self, owner: str) -> None:
        with self._owned_lock:
            left = self._owned.get(owner, 1) - 1
            if left:
                self._owned[owner] = left
            else:
                self._owned.pop(owner, None)

    def hung(self) -> bool:
        started = self.batch_started
        return started is not None and time.monotonic() - started > self.hang_after_s

    def settle(self, batch: list[_Unit], outcomes: list[tuple[bool, Any]]) -> None:
        """Resolve a committed batch's futures with each unit's own result or error."""
        self.stats.commits += 1
        self.stats.units += len(batch)
        for unit, (ok, value) in zip(batch, outcomes):
            if unit.future.done():
                continue
            if ok:
                unit.future.set_result(value)
            else:
                unit.future.set_exception(value)

    def fail(self, batch: list[_Unit], exc: BaseException, *, committing: bool) -> None:
        """Fail every unresolved unit: nothing stored (before COMMIT) or outcome unknown (during it)."""
        self.stats.failed_commits += 1
        if committing:
            self.stats.outcome_unknown += 1
        log.error("group commit of %d writes failed %s: %s", len(batch),
                  "during COMMIT (outcome unknown)" if committing else "before COMMIT", type(exc).__name__)
        error = OutcomeUnknown(OUTCOME_UNKNOWN) if committing else Unavailable(NOTHING_STORED)
        error.__cause__ = exc
        for unit in batch:
            if not unit.future.done():
                unit.future.set_exception(error)

    def apply_batch(self, session: Session, works: list[Callable[[Session], Any]]) -> list[tuple[bool, Any]]:
        """Each unit's outcome; a unit that fails is rolled back alone (the others still commit).

        Core-only units (ratings) are first applied all together inside ONE savepoint: on
        PostgreSQL a per-unit SAVEPOINT and RELEASE are two more round trips and
        subtransactions per rating, on SQLite two more statements. If any unit fails, that
        savepoint is rolled back and the batch is applied again unit by unit, each in its own
        savepoint (`apply_unit`), so only the failing one fails; the next `CAREFUL_BATCHES`
        batches then go unit by unit directly, so a client sending bad writes on purpose
        cannot make every batch run twice.
        """
        if len(works) > 1 and self._careful_until <= self.stats.batches and \
                all(getattr(w, "core_only", False) for w in works):
            self.stats.together += 1
            values = self._apply_together(session, works)
            if values is not None:
                return [(True, v) for v in values]
            self.stats.reapplied += 1
            self._careful_until = self.stats.batches + CAREFUL_BATCHES
        return [self.apply_unit(session, w) for w in works]

    @staticmethod
    def _apply_together(session: Session, works: list[Callable[[Session], Any]]) -> list[Any] | None:
        """Every unit inside one savepoint; None (and nothing applied) when any of them failed."""
        try:
            with _driver_savepoint(session, "llmops_batch"):
                return [work(session) for work in works]
        except _Abort:
            raise
        except Exception:  # noqa: BLE001 - some unit failed: undone, the caller goes one by one
            return None

    @staticmethod
    def apply_unit(session: Session, work: Callable[[Session], Any]) -> tuple[bool, Any]:
        """Run one unit in its own SAVEPOINT: its failure is its own, unless the rollback fails too.

        A unit marked ``core_only`` (Core statements, no ORM objects: a rating) gets a plain
        driver-level SAVEPOINT with a fixed name — no ORM bookkeeping, no statement to compile —
        which is most of what a rating costs the writer; the others get the ORM's nested
        transaction, which also keeps the session's object state right after a failed flush.
        """
        if getattr(work, "core_only", False):
            # On the DBAPI cursor, not `exec_driver_sql`: the statements are fixed text, and
            # SQLAlchemy's execution path (events, result set-up) costs more than SQLite does.
            try:
                with _driver_savepoint(session, "llmops_unit"):
                    value = work(session)
            except _Abort:
                raise
            except Exception as exc:  # noqa: BLE001 - the unit's own failure, reported to its request
                return False, exc
            return True, value
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


@contextmanager
def _driver_savepoint(session: Session, name: str) -> Iterator[None]:
    """A SAVEPOINT on the DBAPI cursor: released on success; rolled back when the body (or the
    RELEASE) raises, which is re-raised; `_Abort` when even the rollback fails."""
    connection = session.connection()
    dialect = connection.dialect
    cursor = connection.connection.dbapi_connection.cursor()
    try:
        driver_sql(cursor, f"SAVEPOINT {name}", dialect)
        try:
            yield
            driver_sql(cursor, f"RELEASE SAVEPOINT {name}", dialect)
        except Exception:
            try:
                driver_sql(cursor, f"ROLLBACK TO SAVEPOINT {name}", dialect)
                driver_sql(cursor, f"RELEASE SAVEPOINT {name}", dialect)
            except Exception as fatal:
                raise _Abort(f"could not roll back savepoint {name}") from fatal
            raise
    finally:
        cursor.close()


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
        max_per_owner: int = MAX_PER_OWNER,
        hang_after_s: float = HANG_AFTER_S,
        name: str = "feedback-group-commit",
    ) -> None:
        if max_wait_s < 0:
            raise ValueError("max_wait_s must be >= 0")
        self._sessions = sessions
        self.intake = Intake(max_batch, max_queue, max_per_owner, hang_after_s)
        self.stats = self.intake.stats
        self.max_batch, self.max_queue, self.max_wait_s = max_batch, max_queue, max_wait_s
        self._queue: deque[_Unit] = deque()
        self._inflight: list[_Unit] = []
        self._cond = threading.Condition()
        self._closed = False
        self._thread: threading.Thread | None = None
        self._name = name

    # ------------------------------------------------------------ intake

    def submit(self, work: Callable[[Session], T], owner: str | None = None) -> Future[T]:
        """Queue `work` (counted against `owner`'s share); the future resolves after the COMMIT that made it durable."""
        unit = _Unit(work, Future(), owner)
        with self._cond:
            if self._closed:
                raise Unavailable("the server is shutting down; nothing was stored, retry")
            self.intake.admit(owner, len(self._queue))
            self.intake.track(unit)
            if self._thread is None or not self._thread.is_alive():
                self._start_writer()
            self._queue.append(unit)
            self._cond.notify()
        return unit.future

    def _start_writer(self) -> None:
        """Start the writer (lazily: apps built without a lifespan still work), or replace a dead one."""
        if self._thread is not None:
            self.stats.restarts += 1
            log.error("group-commit writer thread died; starting a new one")
            lost, self._inflight = self._inflight, []
            self.intake.fail(lost, RuntimeError("writer thread died"), committing=True)
            self.intake.batch_started = None
        self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        self._thread.start()

    async def run(self, work: Callable[[Session], T], owner: str | None = None) -> T:
        """`submit` and await the durable result without blocking the event loop.

        While waiting it checks the writer every `WATCH_S`: a writer that died with this
        unit in flight is replaced, which fails the unit (outcome unknown) instead of
        leaving the request waiting forever.
        """
        future = asyncio.wrap_future(self.submit(work, owner))
        while True:
            done, _ = await asyncio.wait({future}, timeout=WATCH_S)
            if done:
                return future.result()
            self.revive()

    def revive(self) -> bool:
        """Replace a dead writer thread (True if one was replaced)."""
        with self._cond:
            if self._closed or self._thread is None or self._thread.is_alive():
                return False
            self._start_writer()
            return True

    async def aclose(self) -> None:
        await asyncio.to_thread(self.close)

    def health(self) -> dict[str, Any]:
        """Liveness of the writer for /readyz: dead (and not yet restarted) or hung is not ready."""
        thread = self._thread
        alive = thread is None or thread.is_alive()  # not started yet is fine: the first submit starts it
        return {"writer": "thread", "alive": alive, "hung": self.intake.hung(), "queued": self.queued(),
                "restarts": self.stats.restarts}

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
            batch = [self._queue.popleft() for _ in range(n)]
            self._inflight = batch
            return batch

    def _run(self) -> None:
        while (batch := self._next_batch()) is not None:
            live = [u for u in batch if u.future.set_running_or_notify_cancel()]
            if live:
                try:
                    self._apply_batch(live)
                except Exception as exc:  # noqa: BLE001 - never leave a request waiting forever
                    log.exception("group-commit writer failed")
                    self.intake.fail(live, exc, committing=True)
            with self._cond:
                self._inflight = []

    def _apply_batch(self, batch: list[_Unit]) -> None:
        started = time.perf_counter()
        self.intake.batch_started = time.monotonic()
        try:
            self._apply_and_commit(batch)
        finally:
            self.intake.batch_started = None
            self.stats.busy_s += time.perf_counter() - started

    def _apply_and_commit(self, batch: list[_Unit]) -> None:
        self.stats.batches += 1
        self.stats.largest_batch = max(self.stats.largest_batch, len(batch))
        metrics.BATCH_SIZE.observe(len(batch))
        with self._sessions() as session:
            try:
                session.begin()
                outcomes = self.intake.apply_batch(session, [unit.work for unit in batch])
            except Exception as exc:  # noqa: BLE001 - BEGIN or a statement failed: nothing is committed
                self.intake.fail(batch, exc, committing=False)
                return
            try:
                commit_started = time.perf_counter()
                session.commit()
                metrics.COMMIT_SECONDS.observe(time.perf_counter() - commit_started)
            except Exception as exc:  # noqa: BLE001 - the COMMIT itself failed: it may have landed
                discard(session)
                self.intake.fail(batch, exc, committing=True)
                return
        # Committed: every unit of the batch is durable now.
        self.intake.settle(batch, outcomes)

    _apply_unit = staticmethod(Intake.apply_unit)

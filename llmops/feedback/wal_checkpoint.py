"""SQLite WAL checkpoints off the commit path, for the event-loop writer (`llmops.feedback.loop_commit`).

Why: SQLite's automatic checkpoint runs inside the COMMIT that takes the WAL past 1,000
pages: that one COMMIT also copies the WAL's pages into the database file and fsyncs it
(two more fsyncs and ~4 MB of writes). At 1,000 ratings/s that is about once a second, and
every request queued behind that COMMIT waits for it: a few percent of all requests, which
is what a p99 sees. Here the writer's connections run with ``wal_autocheckpoint=0`` and a
thread of its own runs ``PRAGMA wal_checkpoint(PASSIVE)`` on its own connection at most
every `INTERVAL_S` after a commit: a passive checkpoint never blocks writers or readers,
and the writer goes on committing while it copies.

Durability is unchanged: every COMMIT still fsyncs the WAL (``synchronous=FULL``); a
checkpoint only moves committed pages into the main file (and fsyncs it) before the WAL is
reused. If the process dies between checkpoints the WAL is replayed on the next open, as
always. On the last connection's close SQLite checkpoints by itself.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from concurrent.futures import ThreadPoolExecutor

log = logging.getLogger(__name__)
INTERVAL_S = 0.5  # at most this long between checkpoints while commits come in (~500 pages at 1,000 ratings/s)
_FLAG = "llmops_autocheckpoint_off"


class Checkpointer:
    """Passive checkpoints of one SQLite database file, in a background thread."""

    def __init__(self, path: str, *, interval_s: float = INTERVAL_S, busy_timeout_s: float = 5.0) -> None:
        self.path, self.interval_s, self._busy_timeout_s = path, interval_s, busy_timeout_s
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="feedback-checkpoint")
        self._connection: sqlite3.Connection | None = None
        self._running = threading.Event()
        self._last = time.monotonic()
        self.checkpoints = self.failures = 0

    @staticmethod
    def prepare(connection) -> None:
        """Turn off the automatic checkpoint on the writer's DBAPI connection (once per connection).

        `connection` is SQLAlchemy's pooled connection (`Connection.connection`): its ``info``
        lives as long as the DBAPI connection does.
        """
        if not connection.info.get(_FLAG):
            cursor = connection.dbapi_connection.cursor()
            try:
                cursor.execute("PRAGMA wal_autocheckpoint=0")
            finally:
                cursor.close()
            connection.info[_FLAG] = True

    def after_commit(self) -> None:
        """Called by the writer after each COMMIT: start a checkpoint if one is due and none runs."""
        if self._running.is_set() or time.monotonic() - self._last < self.interval_s:
            return
        self._running.set()
        self._last = time.monotonic()
        try:
            self._executor.submit(self._checkpoint)
        except RuntimeError:  # shut down
            self._running.clear()

    def _checkpoint(self) -> None:
        try:
            if self._connection is None:
                self._connection = sqlite3.connect(self.path, timeout=self._busy_timeout_s, isolation_level=None,
                                                   check_same_thread=False)
            self._connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            self.checkpoints += 1
        except Exception:  # noqa: BLE001 - the next commit retries; the WAL only grows meanwhile
            self.failures += 1
            log.exception("WAL checkpoint of %s failed", self.path)
        finally:
            self._running.clear()

    def close(self) -> None:
        """Wait for a running checkpoint, run a last one, close the connection."""
        self._executor.shutdown(wait=True)
        self._running.set()
        self._checkpoint()
        if self._connection is not None:
            self._connection.close()
            self._connection = None


def for_engine(engine) -> Checkpointer | None:
    """A checkpointer for a file-backed SQLite engine, else None (PostgreSQL, in-memory databases)."""
    if engine.dialect.name != "sqlite":
        return None
    path = engine.url.database
    if not path or path == ":memory:" or path.startswith("file:"):
        return None
    return Checkpointer(path)

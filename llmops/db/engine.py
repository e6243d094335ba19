"""Engines and migrations for the shared database.

SQLite (embedded default) runs in WAL mode with a busy timeout, foreign keys on and
``synchronous=FULL`` so a committed write survives a crash of the process or machine.
PostgreSQL is reached with ``postgresql+psycopg://...`` with connect, statement, lock
and idle-in-transaction timeouts (a stalled database answers 503 instead of hanging a
worker forever). Engines never log bound parameters (``hide_parameters``): an error
message must not carry a rater's text or a key hash into a log. `upgrade` applies every
store's alembic migrations (one revision branch per store, ``upgrade heads``) under a
PostgreSQL advisory lock (`llmops.db.migrate`).
"""

from __future__ import annotations

import threading
from functools import lru_cache
from pathlib import Path

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from llmops.db.prepared import driver_sql
from llmops.settings import database_url, env_number

SQLITE_BUSY_TIMEOUT_MS = 30_000
# PostgreSQL timeouts (env LLMOPS_PG_<NAME> overrides): bound every wait on the database.
PG_TIMEOUTS = {
    "CONNECT_TIMEOUT_S": 5,  # TCP connect + auth
    "STATEMENT_TIMEOUT_MS": 30_000,  # any one statement
    "LOCK_TIMEOUT_MS": 5_000,  # waiting for a row/table lock
    "IDLE_IN_TRANSACTION_TIMEOUT_MS": 60_000,  # a client that opened a transaction and went away
}
POOL_TIMEOUT_S = 10  # waiting for a pooled connection
_MIGRATIONS = Path(__file__).parent / "migrations"
_upgrade_lock = threading.Lock()


def _normalise(url: str) -> str:
    # Users write postgresql://; we speak psycopg 3.
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


@lru_cache(maxsize=16)
def _engine_for(url: str) -> Engine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url,
            connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "check_same_thread": False},
            pool_size=8,
            max_overflow=16,
            pool_timeout=POOL_TIMEOUT_S,
            hide_parameters=True,
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # pragma: no cover - exercised by every test
            # pysqlite's implicit BEGIN is disabled so that BEGIN IMMEDIATE can be issued.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA synchronous=FULL")
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn):  # pragma: no cover
            # Take the write lock at BEGIN by default: a deferred transaction that reads and
            # then writes fails with SQLITE_BUSY_SNAPSHOT (no busy wait) when another writer
            # committed in between. Read-only paths opt out with
            # `execution_options(sqlite_begin="DEFERRED")` so they never wait for writers.
            # `sqlite_begin_nowait=True`: fail with "database is locked" at once instead of waiting
            # up to busy_timeout when another connection holds the lock (an event loop may try
            # BEGIN itself and hand it to a thread only when it would wait).
            options = conn.get_execution_options()
            mode = options.get("sqlite_begin", "IMMEDIATE")
            if mode not in {"IMMEDIATE", "DEFERRED", "EXCLUSIVE"}:
                raise ValueError(f"sqlite_begin must be IMMEDIATE, DEFERRED or EXCLUSIVE, got {mode!r}")
            if not options.get("sqlite_begin_nowait"):
                conn.exec_driver_sql(f"BEGIN {mode}")
                return
            # On the DBAPI cursor (an event loop's writer does this once per batch: SQLAlchemy's
            # execution path costs ~10x SQLite's BEGIN); a failure is still SQLAlchemy's error.
            cursor = conn.connection.dbapi_connection.cursor()
            try:
                cursor.execute("PRAGMA busy_timeout=0")
                try:
                    driver_sql(cursor, f"BEGIN {mode}", conn.dialect)
                finally:
                    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            finally:
                cursor.close()

        return engine
    t = pg_timeouts()
    options = (
        f"-c statement_timeout={t['STATEMENT_TIMEOUT_MS']} -c lock_timeout={t['LOCK_TIMEOUT_MS']} "
        f"-c idle_in_transaction_session_timeout={t['IDLE_IN_TRANSACTION_TIMEOUT_MS']}"
    )
    return create_engine(
        url,
        pool_pre_ping=True,
        pool_size=10,
        max_overflow=20,
        pool_timeout=POOL_TIMEOUT_S,
        hide_parameters=True,
        connect_args={"connect_timeout": t["CONNECT_TIMEOUT_S"], "options": options},
    )


def pg_timeouts() -> dict[str, int]:
    """The PostgreSQL timeouts in effect (defaults, overridden by LLMOPS_PG_<NAME>)."""
    from llmops.errors import ConfigError

    return {name: env_number(f"LLMOPS_PG_{name}", default, error=ConfigError) for name, default in PG_TIMEOUTS.items()}


def get_engine(url: str | None = None) -> Engine:
    """The process-wide engine for `url` (default: settings.database_url())."""
    return _engine_for(_normalise(database_url(url)))


def session_factory(url: str | None = None) -> sessionmaker[Session]:
    return sessionmaker(bind=get_engine(url), expire_on_commit=False)


def read_only_session(url: str | None = None, *, snapshot: bool = False) -> Session:
    """A session for reads: on SQLite it begins DEFERRED, so it never waits for writers.

    ``snapshot=True`` pins every statement of the transaction to one snapshot: on
    PostgreSQL ``REPEATABLE READ READ ONLY`` (READ COMMITTED, the default, lets each
    statement see rows committed after the previous one); SQLite's WAL read
    transaction already reads one snapshot from its first statement on.
    """
    engine = get_engine(url)
    if engine.dialect.name == "sqlite":
        engine = engine.execution_options(sqlite_begin="DEFERRED")
    elif snapshot:
        engine = engine.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
    return Session(bind=engine, expire_on_commit=False)


def alembic_config(url: str | None = None):
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    cfg.attributes["engine"] = get_engine(url)
    return cfg


def upgrade(url: str | None = None) -> None:
    """Bring the database to the newest schema of every store (idempotent).

    On PostgreSQL the migration runs under a transaction-scoped advisory lock taken in
    the alembic environment, so two servers started at once on an empty database
    migrate one after the other; on SQLite ``BEGIN IMMEDIATE`` serialises them.
    """
    from alembic import command

    with _upgrade_lock:
        command.upgrade(alembic_config(url), "heads")

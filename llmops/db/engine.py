"""Engines and migrations for the shared database.

SQLite (embedded default) runs in WAL mode with a busy timeout, foreign keys on and
``synchronous=FULL`` so a committed write survives a crash of the process or machine.
PostgreSQL is reached with ``postgresql+psycopg://...``. `upgrade` applies every
store's alembic migrations (one revision branch per store, ``upgrade heads``).
"""

from __future__ import annotations

import threading
from functools import lru_cache
from pathlib import Path

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from llmops.settings import database_url

SQLITE_BUSY_TIMEOUT_MS = 30_000
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
            mode = conn.get_execution_options().get("sqlite_begin", "IMMEDIATE")
            if mode not in {"IMMEDIATE", "DEFERRED", "EXCLUSIVE"}:
                raise ValueError(f"sqlite_begin must be IMMEDIATE, DEFERRED or EXCLUSIVE, got {mode!r}")
            conn.exec_driver_sql(f"BEGIN {mode}")

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)


def get_engine(url: str | None = None) -> Engine:
    """The process-wide engine for `url` (default: settings.database_url())."""
    return _engine_for(_normalise(database_url(url)))


def session_factory(url: str | None = None) -> sessionmaker[Session]:
    return sessionmaker(bind=get_engine(url), expire_on_commit=False)


def read_only_session(url: str | None = None) -> Session:
    """A session for reads: on SQLite it begins DEFERRED, so it never waits for writers."""
    engine = get_engine(url)
    if engine.dialect.name == "sqlite":
        engine = engine.execution_options(sqlite_begin="DEFERRED")
    return Session(bind=engine, expire_on_commit=False)


def upgrade(url: str | None = None) -> None:
    """Bring the database to the newest schema of every store (idempotent)."""
    from alembic import command
    from alembic.config import Config

    engine = get_engine(url)
    cfg = Config()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    cfg.attributes["engine"] = engine
    with _upgrade_lock:
        command.upgrade(cfg, "heads")

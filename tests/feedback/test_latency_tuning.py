"""What the server does for its tail latency: the start-up heap frozen out of the collector's reach,
every collection timed in /metrics, request ids without a system call per request."""

from __future__ import annotations

import gc
import os
import re

import pytest


@pytest.fixture
def unfrozen():
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()  # leave the test process as it was
    gc.set_threshold(*thresholds)


def test_served_app_freezes_its_startup_heap_and_times_collections(sqlite_url, keys_sqlite, unfrozen):
    from fastapi.testclient import TestClient

    from llmops.feedback.api import create_app

    gc.unfreeze()
    assert gc.get_freeze_count() == 0
    with TestClient(create_app(sqlite_url, freeze_gc=True), base_url="http://localhost") as client:  # lifespan start-up runs here
        assert gc.get_freeze_count() > 10_000  # FastAPI, SQLAlchemy, pydantic, the app: all frozen
        assert gc.get_threshold()[0] == 10_000  # young collections spaced out (CPython: every 700)
        gc.collect(0)
        text = client.get("/metrics").text
    assert re.search(r'llmops_gc_pause_seconds_count\{generation="0"\} [1-9]', text), text[:2000]
    assert re.search(r'llmops_gc_cpu_seconds_total\{generation="0"\} ', text)


def _collectable(obj) -> bool:
    """Whether the cyclic collector still scans `obj` (frozen objects are in no generation)."""
    return any(o is obj for g in range(3) for o in gc.get_objects(g))


def test_what_the_first_requests_build_is_frozen_too(unfrozen):
    """Objects created after start-up (lazily built routes, compiled SQL) leave the collector at 1k/10k/100k requests."""
    import asyncio

    from llmops.feedback import gc_pauses

    gc.unfreeze()
    served = [0]
    seen = {}

    async def scenario() -> None:
        task = asyncio.create_task(gc_pauses.freeze_when_warm(lambda: served[0], at=(10, 20), poll_s=0.001))
        early = [["built by the first requests"]]
        served[0] = 5
        await asyncio.sleep(0.02)
        seen["early before 10"] = _collectable(early)
        served[0] = 12
        await asyncio.sleep(0.02)
        seen["early after 10"] = _collectable(early)
        late = [["built later"]]
        await asyncio.sleep(0.02)
        seen["late before 20"] = _collectable(late)
        served[0] = 25
        await asyncio.wait_for(task, 1)  # both thresholds passed: it finished
        seen["late after 20"] = _collectable(late)

    asyncio.run(scenario())
    assert seen == {"early before 10": True, "early after 10": False, "late before 20": True, "late after 20": False}


def test_served_app_counts_requests_for_the_warm_freeze(sqlite_url, keys_sqlite, unfrozen):
    from fastapi.testclient import TestClient

    from llmops.feedback.api import create_app
    from llmops.feedback.api.request_id import requests_served

    with TestClient(create_app(sqlite_url, freeze_gc=True), base_url="http://localhost") as client:
        start = requests_served()
        for _ in range(3):
            client.get("/healthz")
        assert requests_served() == start + 3


def test_the_default_app_leaves_the_collector_alone(sqlite_url, keys_sqlite, unfrozen):
    from fastapi.testclient import TestClient

    from llmops.feedback.api import create_app

    gc.unfreeze()
    thresholds = gc.get_threshold()
    with TestClient(create_app(sqlite_url)):
        assert gc.get_freeze_count() == 0  # only `llmops feedback serve` (app_from_env) freezes
        assert gc.get_threshold() == thresholds


def test_llmops_feedback_serve_freezes_unless_told_not_to(monkeypatch, sqlite_url, keys_sqlite):
    from llmops.feedback.api import app as app_module

    seen = {}
    monkeypatch.setattr(app_module, "create_app", lambda *a, **kw: seen.update(kw))
    monkeypatch.setenv("LLMOPS_DATABASE_URL", sqlite_url)
    app_module.app_from_env()
    assert seen["freeze_gc"] is True
    monkeypatch.setenv("LLMOPS_FEEDBACK_FREEZE_GC", "0")
    app_module.app_from_env()
    assert seen["freeze_gc"] is False


def test_request_ids_are_unique_per_process_and_fresh_after_fork():
    from llmops.feedback.api import request_id

    ids = {request_id.new_id() for _ in range(10_000)}
    assert len(ids) == 10_000
    assert all(re.fullmatch(r"[0-9a-f]{16}-[0-9a-f]+", i) for i in ids)
    assert all(request_id._ID.fullmatch(i) for i in list(ids)[:10])  # accepted back as an incoming X-Request-ID
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: its ids must not repeat the parent's prefix
        os.write(write, request_id.new_id().encode())
        os._exit(0)
    os.waitpid(pid, 0)
    child = os.read(read, 100).decode()
    assert child.split("-")[0] != request_id.new_id().split("-")[0]


def test_wal_checkpoints_run_beside_the_writer_not_inside_its_commits(sqlite_url, keys_sqlite):
    """The event-loop writer's connections never checkpoint inside a COMMIT; the checkpointer thread does,
    and every acknowledged rating is in the database file after it (durability unchanged)."""
    import sqlite3

    from fastapi.testclient import TestClient

    from llmops.feedback.api import create_app
    from llmops.feedback.store import FeedbackStore

    made = FeedbackStore(sqlite_url).create_item("p", [{"text": f"r{i}"} for i in range(8)])
    app = create_app(sqlite_url)
    checkpointer = app.state.committer.checkpointer
    assert checkpointer is not None
    checkpointer.interval_s = 0.0  # due after every commit
    h = keys_sqlite.headers("rater")
    with TestClient(app, base_url="http://localhost") as client:
        for rid in made.response_ids:
            assert client.post("/v1/ratings", json={"response_id": rid, "score": 3}, headers=h).status_code == 201
        writer = app.state.committer._connection.connection.dbapi_connection  # the writer's own, kept open
        assert writer.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0  # off where the writer commits
        with app.state.read_sessions() as s:  # other connections keep SQLite's default
            assert s.connection().exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 1000
    assert checkpointer.checkpoints >= 1 and checkpointer.failures == 0
    path = sqlite_url.split("///", 1)[1]
    with sqlite3.connect(path) as raw:  # the WAL was moved into the file: readable without it
        raw.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        assert raw.execute("SELECT count(*) FROM feedback_ratings").fetchone()[0] == 8
    inline = create_app(sqlite_url, background_checkpoints=False)
    assert inline.state.committer.checkpointer is None


def test_begin_nowait_fails_at_once_when_another_connection_writes(sqlite_url: str, keys_sqlite) -> None:
    import sqlite3
    import time

    from sqlalchemy.exc import OperationalError

    from llmops.db import session_factory
    from llmops.db.engine import SQLITE_BUSY_TIMEOUT_MS

    other = sqlite3.connect(sqlite_url.split("///", 1)[1], isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process's writer holds the lock
    try:
        with session_factory(sqlite_url)() as s:
            started = time.monotonic()
            with pytest.raises(OperationalError, match="locked"):
                s.connection(execution_options={"sqlite_begin_nowait": True})
            assert time.monotonic() - started < 1.0  # not busy_timeout (seconds)
        with session_factory(sqlite_url)() as s:  # the pooled connection waits again as usual
            conn = s.connection(execution_options={"sqlite_begin": "DEFERRED"})
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == SQLITE_BUSY_TIMEOUT_MS
    finally:
        other.execute("ROLLBACK")
        other.close()


def test_event_loop_writer_waits_for_another_writer_off_the_loop(sqlite_url: str, keys_sqlite) -> None:
    """BEGIN runs on the loop only when the lock is free; held by another process, the wait is
    the commit thread's, and the loop keeps answering meanwhile."""
    import asyncio
    import sqlite3
    import time

    import httpx

    from llmops.feedback.api import create_app
    from llmops.feedback.store import FeedbackStore

    rid = FeedbackStore(sqlite_url, migrate=False).create_item("p", [{"text": "a"}]).response_ids[0]
    app = create_app(sqlite_url)
    other = sqlite3.connect(sqlite_url.split("///", 1)[1], isolation_level=None)

    async def scenario() -> tuple[int, float]:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://localhost") as c:
            assert (await c.post("/v1/ratings", json={"response_id": rid, "score": 1},
                                 headers=keys_sqlite.headers("rater2"))).status_code == 201  # lock free: on the loop
            other.execute("BEGIN IMMEDIATE")
            rating = asyncio.create_task(c.post("/v1/ratings", json={"response_id": rid, "score": 4},
                                                headers=keys_sqlite.headers("rater")))
            await asyncio.sleep(0.3)
            started = time.monotonic()
            assert (await c.get("/healthz")).status_code == 200  # the loop is free while the writer waits
            answered_in = time.monotonic() - started
            assert not rating.done()
            other.execute("COMMIT")
            status = (await rating).status_code
            # the connection that waited is now the writer's, set up like the first one
            writer = app.state.committer._connection.connection.dbapi_connection
            assert writer.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0
            return status, answered_in

    try:
        status, answered_in = asyncio.run(scenario())
    finally:
        other.close()
        app.state.committer.close()
    assert status == 201 and answered_in < 0.5

"""What the server does for its tail latency: the start-up heap frozen out of the collector's reach,
every collection timed in /metrics, request ids without a system call per request."""

from __future__ import annotations

import gc
import os
import re

import pytest


@pytest.fixture
def unfrozen():
    yield
    gc.unfreeze()  # leave the test process as it was


def test_served_app_freezes_its_startup_heap_and_times_collections(sqlite_url, keys_sqlite, unfrozen):
    from fastapi.testclient import TestClient

    from llmops.feedback.api import create_app

    gc.unfreeze()
    assert gc.get_freeze_count() == 0
    with TestClient(create_app(sqlite_url, freeze_gc=True), base_url="http://localhost") as client:  # lifespan start-up runs here
        assert gc.get_freeze_count() > 10_000  # FastAPI, SQLAlchemy, pydantic, the app: all frozen
        gc.collect(0)
        text = client.get("/metrics").text
    assert re.search(r'llmops_gc_pause_seconds_count\{generation="0"\} [1-9]', text), text[:2000]
    assert re.search(r'llmops_gc_cpu_seconds_total\{generation="0"\} ', text)


def test_the_default_app_leaves_the_collector_alone(sqlite_url, keys_sqlite, unfrozen):
    from fastapi.testclient import TestClient

    from llmops.feedback.api import create_app

    gc.unfreeze()
    with TestClient(create_app(sqlite_url)):
        assert gc.get_freeze_count() == 0  # only `llmops feedback serve` (app_from_env) freezes


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

"""The SQLite event-loop writer's per-batch costs: one connection for its life (no pool checkout
and Session BEGIN per batch), and a short wait for a fuller batch only while writes stream in."""

from __future__ import annotations

import asyncio
import time

from llmops.feedback.api import create_app
from llmops.feedback.tables import Rating

from .helpers import Keys
from .test_group_commit import asgi_client, count, listening, make_item


def test_the_writer_keeps_one_connection_across_batches(sqlite_url: str, keys_sqlite: Keys):
    app = create_app(sqlite_url, max_wait_s=0, auth_ttl_s=600)  # no key re-reads during the test
    committer = app.state.committer
    _, rids = make_item(sqlite_url, n=12)
    h = keys_sqlite.headers("rater")
    checkouts: list[int] = []

    async def scenario() -> list[int]:
        async with asgi_client(app) as client:
            first = await client.post("/v1/ratings", json={"response_id": rids[0], "score": 1}, headers=h)
            with listening(sqlite_url, "checkout", lambda *_args: checkouts.append(1)):
                rest = [await client.post("/v1/ratings", json={"response_id": r, "score": 2}, headers=h)
                        for r in rids[1:]]
            return [first.status_code] + [r.status_code for r in rest]

    batches = committer.stats.batches
    assert asyncio.run(scenario()) == [201] * len(rids)
    assert committer.stats.batches - batches == len(rids)  # one batch each (sequential, no wait)
    assert checkouts == []  # the writer's connection stayed with it: no pool checkout per batch
    assert count(sqlite_url, Rating) == len(rids)


def test_a_failure_before_commit_drops_the_connection_and_the_next_batch_reconnects(sqlite_url: str,
                                                                                     keys_sqlite: Keys):
    app = create_app(sqlite_url, max_wait_s=0)
    _, (a, b, *_rest) = make_item(sqlite_url)
    h = keys_sqlite.headers("rater")
    armed = [True]

    def fail_begin(conn) -> None:
        if armed and conn.get_execution_options().get("sqlite_begin_nowait"):
            armed.pop()
            raise RuntimeError("injected failure at BEGIN")

    async def scenario():
        async with asgi_client(app) as client:
            await client.post("/v1/ratings", json={"response_id": a, "score": 1}, headers=h)  # the connection exists
            with listening(sqlite_url, "begin", fail_begin):
                failed = await client.post("/v1/ratings", json={"response_id": b, "score": 2}, headers=h)
            again = await client.post("/v1/ratings", json={"response_id": b, "score": 2}, headers=h)
            return failed, again

    failed, again = asyncio.run(scenario())
    assert failed.status_code == 503 and failed.json()["error"]["code"] == "database_unavailable"  # nothing stored
    assert again.status_code == 201
    assert count(sqlite_url, Rating) == 2


def test_a_write_alone_does_not_wait_but_streaming_writes_share_a_batch(sqlite_url: str, keys_sqlite: Keys):
    """With a (deliberately long) 0.3 s wait: an isolated write is answered without it; writes that
    keep coming right after a commit are gathered into one batch instead of one batch each."""
    app = create_app(sqlite_url, max_wait_s=0.3)
    committer = app.state.committer
    _, rids = make_item(sqlite_url, n=6)
    h = keys_sqlite.headers("rater")

    async def scenario() -> tuple[float, list[int], int]:
        async with asgi_client(app) as client:
            await client.post("/v1/ratings", json={"response_id": rids[0], "score": 1}, headers=h)  # warm
            await asyncio.sleep(0.4)  # idle: the last commit is older than the wait
            started = time.monotonic()
            alone = await client.post("/v1/ratings", json={"response_id": rids[1], "score": 1}, headers=h)
            alone_s = time.monotonic() - started
            assert alone.status_code == 201
            before = committer.stats.batches

            async def later(i: int, rid: int):
                await asyncio.sleep(0.02 * i)  # one every 20 ms, right after the commit above
                return await client.post("/v1/ratings", json={"response_id": rid, "score": 2}, headers=h)

            answers = await asyncio.gather(*(later(i, r) for i, r in enumerate(rids[2:])))
            return alone_s, [r.status_code for r in answers], committer.stats.batches - before

    alone_s, statuses, batches = asyncio.run(scenario())
    assert alone_s < 0.2  # not the 0.3 s wait
    assert statuses == [201] * 4
    assert batches == 1  # four writes 20 ms apart, one COMMIT (without the wait: four)
    assert count(sqlite_url, Rating) == 6


def test_closing_returns_the_writers_connection_to_the_pool(sqlite_url: str, keys_sqlite: Keys):
    app = create_app(sqlite_url)
    committer = app.state.committer
    _, (a, *_rest) = make_item(sqlite_url)

    async def scenario() -> None:
        async with asgi_client(app) as client:
            r = await client.post("/v1/ratings", json={"response_id": a, "score": 3}, headers=keys_sqlite.headers("rater"))
            assert r.status_code == 201
            assert committer._connection is not None  # held between batches
            await committer.aclose()
            assert committer._connection is None

    asyncio.run(scenario())
    assert count(sqlite_url, Rating) == 1


def test_the_wait_comes_from_the_environment_and_a_bad_value_names_its_variable(monkeypatch, sqlite_url: str):
    import pytest

    from llmops.errors import ConfigError
    from llmops.feedback.api import app as app_module

    seen: dict = {}
    monkeypatch.setattr(app_module, "create_app", lambda *a, **kw: seen.update(kw))
    monkeypatch.setenv("LLMOPS_DATABASE_URL", sqlite_url)
    app_module.app_from_env()
    assert seen["max_wait_s"] is None  # each writer's own default
    monkeypatch.setenv("LLMOPS_FEEDBACK_MAX_WAIT_MS", "2.5")
    app_module.app_from_env()
    assert seen["max_wait_s"] == 0.0025
    monkeypatch.setenv("LLMOPS_FEEDBACK_MAX_WAIT_MS", "1ms")
    with pytest.raises(ConfigError, match="LLMOPS_FEEDBACK_MAX_WAIT_MS must be a number, got '1ms'"):
        app_module.app_from_env()
    monkeypatch.setenv("LLMOPS_FEEDBACK_MAX_WAIT_MS", "1")
    monkeypatch.setenv("LLMOPS_FEEDBACK_MAX_BATCH", "lots")
    with pytest.raises(ConfigError, match="LLMOPS_FEEDBACK_MAX_BATCH must be an integer, got 'lots'"):
        app_module.app_from_env()

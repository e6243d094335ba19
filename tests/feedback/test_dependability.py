"""Dependable writes: a dead writer is noticed and replaced, readiness is honest, and a COMMIT that
fails in flight is reported as "outcome unknown" — the retry with the same Idempotency-Key returns
what was stored, never a second row."""

from __future__ import annotations

import asyncio

import pytest

from llmops.feedback.api import create_app
from llmops.feedback.tables import Rating

from .helpers import Keys
from .test_group_commit import Gate, asgi_client, count, listening, make_item, until


class Killed(BaseException):
    """Escapes every `except Exception`: the writer thread dies of it, as of a bug or a signal."""


def _kill(_session):
    raise Killed("writer killed by the test")


KILLED_THREAD = pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")


@KILLED_THREAD
def test_killed_writer_thread_is_replaced_and_its_batch_answered_honestly(db_url: str, keys: Keys):
    app = create_app(db_url, writer="thread")
    committer = app.state.committer
    _, (a, b, *_rest) = make_item(db_url)
    alice = {**keys.headers("rater"), "Idempotency-Key": "rating-a"}

    async def scenario():
        async with asgi_client(app) as client:
            gate = Gate(committer)
            rating = asyncio.create_task(client.post("/v1/ratings", json={"response_id": a, "score": 4}, headers=alice))
            await until(lambda: committer.queued() == 1)
            killer = committer.submit(_kill)  # same batch as the rating, after it: the thread dies mid-batch
            gate.open()
            first = await asyncio.wait_for(rating, 30)  # answered, not left hanging
            assert killer.exception(10) is not None
            ready = await client.get("/readyz")
            retry = await client.post("/v1/ratings", json={"response_id": a, "score": 4}, headers=alice)
            other = await client.post("/v1/ratings", json={"response_id": b, "score": 2}, headers=keys.headers("rater"))
            return first, ready, retry, other

    try:
        first, ready, retry, other = asyncio.run(scenario())
    finally:
        committer.close()
    assert first.status_code == 503 and first.json()["error"]["code"] == "outcome_unknown"
    assert "retry with the same Idempotency-Key" in first.json()["error"]["message"]
    assert committer.stats.restarts == 1
    assert ready.status_code == 200  # replaced already: ready again
    assert retry.status_code == 201 and other.status_code == 201
    assert count(db_url, Rating) == 2  # the killed batch stored nothing; the retry stored it once


@KILLED_THREAD
def test_readiness_fails_while_the_writer_is_dead_or_hung(sqlite_url: str, keys_sqlite: Keys):
    app = create_app(sqlite_url, writer="thread")
    committer = app.state.committer
    committer.intake.hang_after_s = 0.2
    _, (a, *_rest) = make_item(sqlite_url)

    async def scenario():
        async with asgi_client(app) as client:
            assert (await client.get("/readyz")).status_code == 200
            gate = Gate(committer)  # a batch that does not finish
            await asyncio.sleep(0.3)
            hung = await client.get("/readyz")
            gate.open()
            fine = await client.get("/readyz")
            committer.submit(_kill)
            await until(lambda: not committer.health()["alive"])
            dead = await client.get("/readyz")
            live = await client.get("/healthz")  # liveness is not readiness: the process answers
            ok = await client.post("/v1/ratings", json={"response_id": a, "score": 3}, headers=keys_sqlite.headers("rater"))
            return hung, fine, dead, live, ok, await client.get("/readyz")

    try:
        hung, fine, dead, live, ok, again = asyncio.run(scenario())
    finally:
        committer.close()
    assert hung.status_code == 503 and "writer hung" in hung.json()["problems"]
    assert fine.status_code == 200
    assert dead.status_code == 503 and "writer dead" in dead.json()["problems"]
    assert live.status_code == 200 and ok.status_code == 201 and again.status_code == 200


def test_event_loop_writer_task_is_replaced_when_it_dies(sqlite_url: str, keys_sqlite: Keys):
    app = create_app(sqlite_url)  # SQLite: the event-loop writer
    committer = app.state.committer
    assert committer.health()["writer"] == "event-loop"
    _, (a, b, *_rest) = make_item(sqlite_url)
    h = keys_sqlite.headers("rater")

    async def scenario():
        async with asgi_client(app) as client:
            first = await client.post("/v1/ratings", json={"response_id": a, "score": 3}, headers=h)
            committer._task.cancel()
            await asyncio.sleep(0.05)
            dead = await client.get("/readyz")
            second = await client.post("/v1/ratings", json={"response_id": b, "score": 3}, headers=h)
            return first, dead, second

    first, dead, second = asyncio.run(scenario())
    assert first.status_code == 201 and dead.status_code == 503 and second.status_code == 201
    assert committer.stats.restarts == 1 and count(sqlite_url, Rating) == 2


def test_commit_that_lands_but_fails_in_flight_is_outcome_unknown_and_the_retry_replays(db_url: str, keys: Keys):
    """The database commits, then the connection dies before the answer: the client is told the
    truth (unknown), and the retry with its Idempotency-Key returns the stored answer."""
    app = create_app(db_url)  # the default writer of each backend
    _, (a, *_rest) = make_item(db_url)
    h = {**keys.headers("rater"), "Idempotency-Key": "lost-answer"}
    armed = [True]

    def commit_then_fail(conn) -> None:
        if armed and conn.in_transaction() and armed.pop():
            conn.connection.dbapi_connection.commit()  # it lands ...
            raise ConnectionResetError("connection lost after COMMIT was sent")  # ... the answer does not

    async def scenario():
        async with asgi_client(app) as client:
            await client.get("/v1/items", headers=keys.headers("rater"))  # warm the key cache (its read commits)
            with listening(db_url, "commit", commit_then_fail):
                lost = await client.post("/v1/ratings", json={"response_id": a, "score": 5}, headers=h)
            retry = await client.post("/v1/ratings", json={"response_id": a, "score": 5}, headers=h)
            return lost, retry

    lost, retry = asyncio.run(scenario())
    assert lost.status_code == 503 and lost.json()["error"]["code"] == "outcome_unknown"
    assert "request id" in lost.json()["error"]["message"] and lost.headers["x-request-id"] in lost.json()["error"]["message"]
    assert "ConnectionResetError" not in lost.text  # generic message; the cause is in the log only
    assert retry.status_code == 201 and retry.headers.get("idempotent-replayed") == "true"
    assert count(db_url, Rating) == 1

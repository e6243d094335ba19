"""Group commit, on SQLite and PostgreSQL: many requests share one transaction, each fails alone.

The batching tests are deterministic: a "gate" unit holds the writer while requests
queue up behind it (their number is read from the committer), so the batch that
follows contains exactly those requests, in that order.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import httpx
import pytest
from sqlalchemy import event, func, select, text

from llmops.db import get_engine, session_factory
from llmops.feedback.api import create_app
from llmops.feedback.errors import Unavailable
from llmops.feedback.group_commit import GroupCommitter
from llmops.feedback.tables import Comparison, Item, Rating

from .helpers import Keys

UNKNOWN_KEY = "llmf_0123456789ab_" + "x" * 43  # well formed, yet refused before the queue


def count(db_url: str, model) -> int:
    with session_factory(db_url)() as s:
        return s.scalar(select(func.count()).select_from(model))


@contextmanager
def listening(db_url: str, name: str, listener: Callable) -> Iterator[None]:
    """`listener` on the engine's `name` event (a fault to inject, a counter) for the block's duration."""
    engine = get_engine(db_url)
    event.listen(engine, name, listener)
    try:
        yield
    finally:
        event.remove(engine, name, listener)


@contextmanager
def counted_commits(db_url: str) -> Iterator[list[int]]:
    """Count COMMITs on the engine (the only writer in these tests is the group committer)."""
    seen: list[int] = []
    with listening(db_url, "commit", lambda _conn: seen.append(1)):
        yield seen


class Gate:
    """A unit that occupies the writer until released, so that others queue up behind it."""

    def __init__(self, committer: GroupCommitter) -> None:
        self.started, self.opened = threading.Event(), threading.Event()
        self.future = committer.submit(self._hold)
        assert self.started.wait(30), "the writer never picked up the gate"

    def _hold(self, session) -> str:
        session.execute(text("SELECT 1"))  # a real transaction (on SQLite it holds the write lock)
        self.started.set()
        assert self.opened.wait(30)
        return "gate"

    def open(self) -> None:
        self.opened.set()
        assert self.future.result(30) == "gate"


async def until(predicate: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting for requests to queue"
        await asyncio.sleep(0.005)


async def queue_up(client: httpx.AsyncClient, committer: GroupCommitter, requests: list[tuple]) -> list[asyncio.Task]:
    """Send `requests` concurrently and return once all of them wait in the committer's queue."""
    before = committer.queued()
    tasks = [asyncio.create_task(client.post(path, json=body, headers=headers)) for path, body, headers in requests]
    await until(lambda: committer.queued() == before + len(requests))
    return tasks


def asgi_client(app) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://localhost")


def make_item(db_url: str, n: int = 4) -> tuple[int, list[int]]:
    from llmops.feedback.store import FeedbackStore

    made = FeedbackStore(db_url, migrate=False).create_item("p", [{"text": f"r{i}"} for i in range(n)])
    return made.item_id, made.response_ids


def test_one_batch_one_commit_and_bad_elements_fail_alone(db_url: str, keys: Keys):
    app = create_app(db_url, writer="thread")  # the Gate holds the writer thread
    committer = app.state.committer
    item_id, (a, b, c, d) = make_item(db_url)
    alice, bob, service = keys.headers("rater"), keys.headers("rater2"), keys.headers("service")

    def key(headers: dict, k: str) -> dict:
        return {**headers, "Idempotency-Key": k}

    firsts = [
        ("/v1/ratings", {"response_id": a, "score": 5}, alice),
        ("/v1/ratings", {"response_id": b, "score": 4, "critique": "ok"}, alice),
        ("/v1/ratings", {"response_id": a, "score": 1}, bob),
        ("/v1/ratings", {"response_id": 999_999, "score": 3}, alice),  # unknown id
        ("/v1/ratings", {"response_id": c, "score": 9}, alice),  # off the item's 1..5 scale
        ("/v1/ratings", {"response_id": b, "score": 2}, key(bob, "k1")),
        ("/v1/ratings", {"response_id": c, "score": 2}, key(bob, "k2")),
        ("/v1/comparisons", {"item_id": item_id, "chosen": a, "rejected": b}, alice),
        ("/v1/items", {"prompt": "q", "responses": [{"text": "x"}]}, service),
    ]
    # Refused before anything is queued: answered while the gate still holds the writer.
    refused = [
        ("/v1/items", {"prompt": "q", "responses": [{"text": "x"}]}, alice),  # raters may not create items
        ("/v1/ratings", {"response_id": d, "score": 3}, {"Authorization": f"Bearer {UNKNOWN_KEY}"}),
    ]
    # Queued after the firsts, so in the same batch but later in it: they see the firsts' rows.
    seconds = [
        ("/v1/ratings", {"response_id": a, "score": 2}, alice),  # alice already rated a
        ("/v1/ratings", {"response_id": b, "score": 2}, key(bob, "k1")),  # a retry: replayed
        ("/v1/ratings", {"response_id": d, "score": 2}, key(bob, "k2")),  # same key, other body
        ("/v1/comparisons", {"item_id": item_id, "chosen": b, "rejected": a}, alice),  # same pair again
        ("/v1/ratings", {"response_id": d, "score": 1}, alice),
    ]

    async def scenario() -> list[httpx.Response]:
        async with asgi_client(app) as client:
            gate = Gate(committer)
            tasks = await queue_up(client, committer, firsts)
            tasks += await queue_up(client, committer, seconds)
            early = [await client.post(path, json=body, headers=h) for path, body, h in refused]
            assert committer.queued() == len(firsts) + len(seconds)  # the refused never reached the writer
            gate.open()
            return early + list(await asyncio.gather(*tasks))

    for token in (keys.rater, keys.rater2, keys.service, UNKNOWN_KEY):  # warm the key cache: its reads commit too
        try:
            app.state.verifier.authenticate(token)
        except Exception:  # noqa: BLE001 - the unknown key's failure is cached as well
            pass
    try:
        with counted_commits(db_url) as commits:
            answers = asyncio.run(scenario())
        assert [r.status_code for r in answers[:2]] == [403, 401]
        answers = answers[2:]
        expected = [201, 201, 201, 404, 422, 201, 201, 201, 201, 409, 201, 422, 409, 201]
        assert [r.status_code for r in answers] == expected, [r.text for r in answers]
        codes = [r.json().get("error", {}).get("code") for r in answers]
        assert codes[3:5] == ["not_found", "out_of_scale"] and codes[9] == "duplicate_rating"
        assert codes[11] == "idempotency_key_reused" and codes[12] == "duplicate_comparison"
        assert answers[10].headers.get("Idempotent-Replayed") == "true"
        assert answers[10].json() == answers[5].json()
        # The gate's transaction, then ONE transaction for all fourteen queued requests.
        assert len(commits) == 2
        assert committer.stats.largest_batch == len(firsts) + len(seconds)
        assert (committer.stats.commits, committer.stats.failed_commits) == (2, 0)
    finally:
        committer.close()
    acked = {r.json()["id"] for r in answers if r.status_code == 201 and r.request.url.path == "/v1/ratings"}
    with session_factory(db_url)() as s:
        assert set(s.scalars(select(Rating.id))) == acked  # every acknowledged rating, nothing else
    assert count(db_url, Rating) == 6 and count(db_url, Comparison) == 1 and count(db_url, Item) == 2


def test_ratings_are_applied_together_and_a_bad_one_still_fails_alone(db_url: str, keys: Keys, monkeypatch):
    """A batch of ratings runs in ONE savepoint (not one per rating); when one of them fails, the
    batch is rolled back and re-applied rating by rating, so only that one fails; the next
    batches go rating by rating (a client sending bad writes cannot make every batch run twice)."""
    from llmops.feedback import group_commit

    monkeypatch.setattr(group_commit, "CAREFUL_BATCHES", 3)  # each batch below follows a gate batch
    app = create_app(db_url, writer="thread")  # the Gate holds the writer thread
    committer = app.state.committer
    _, rids = make_item(db_url, n=8)
    alice, bob = keys.headers("rater"), keys.headers("rater2")

    async def batch(requests: list[tuple]) -> list[int]:
        async with asgi_client(app) as client:
            gate = Gate(committer)
            tasks = await queue_up(client, committer, requests)
            gate.open()
            return [r.status_code for r in await asyncio.gather(*tasks)]

    def ratings(headers: dict, ids: list[int]) -> list[tuple]:
        return [("/v1/ratings", {"response_id": r, "score": 3}, headers) for r in ids]

    try:
        assert asyncio.run(batch(ratings(alice, rids[:4]))) == [201] * 4
        assert (committer.stats.together, committer.stats.reapplied) == (1, 0)
        # alice's second rating of rids[1] is a duplicate: the database refuses it mid-batch
        assert asyncio.run(batch(ratings(bob, rids[:2]) + ratings(alice, rids[1:2]) + ratings(bob, rids[2:4]))) \
            == [201, 201, 409, 201, 201]
        assert (committer.stats.together, committer.stats.reapplied) == (2, 1)
        assert asyncio.run(batch(ratings(bob, rids[4:6]))) == [201, 201]  # careful: one by one
        assert committer.stats.together == 2
        assert asyncio.run(batch(ratings(bob, rids[6:8]))) == [201, 201]  # together again
        assert (committer.stats.together, committer.stats.reapplied) == (3, 1)
    finally:
        committer.close()
    assert count(db_url, Rating) == 4 + 4 + 2 + 2


def test_failed_commit_fails_every_request_of_the_batch(db_url: str, keys: Keys):
    app = create_app(db_url, writer="thread")  # the Gate holds the writer thread
    committer = app.state.committer
    _, rids = make_item(db_url)
    alice = keys.headers("rater")
    skip: list[int] = []  # armed: let this many COMMITs through, then fail one

    def fail_after(_conn) -> None:
        if skip:
            if skip[0] == 0:
                skip.clear()
                raise RuntimeError("injected COMMIT failure (e.g. disk full)")
            skip[0] -= 1

    async def batch() -> list[httpx.Response]:
        async with asgi_client(app) as client:
            gate = Gate(committer)
            tasks = await queue_up(client, committer, [("/v1/ratings", {"response_id": r, "score": 3}, alice) for r in rids])
            skip.append(1)  # the gate's COMMIT passes, the ratings' batch COMMIT fails
            gate.open()
            return list(await asyncio.gather(*tasks))

    with listening(db_url, "commit", fail_after):
        answers = asyncio.run(batch())
    try:
        assert [r.status_code for r in answers] == [503] * len(rids)
        # A failure inside COMMIT cannot say whether the COMMIT landed: the answer says so honestly.
        assert {r.json()["error"]["code"] for r in answers} == {"outcome_unknown"}
        assert all("retry with the same Idempotency-Key" in r.json()["error"]["message"] for r in answers)
        assert {r.headers.get("Retry-After") for r in answers} == {"1"}
        assert committer.stats.failed_commits == 1 and count(db_url, Rating) == 0

        async def retry() -> list[int]:  # nothing was stored, so a retry stores each rating once
            async with asgi_client(app) as client:
                posts = [client.post("/v1/ratings", json={"response_id": r, "score": 3}, headers=alice) for r in rids]
                return [r.status_code for r in await asyncio.gather(*posts)]

        assert asyncio.run(retry()) == [201] * len(rids)
    finally:
        committer.close()
    assert count(db_url, Rating) == len(rids)


def test_full_queue_answers_503_with_retry_after(sqlite_url: str, keys_sqlite: Keys):
    app = create_app(sqlite_url, max_queue=2, writer="thread")
    committer = app.state.committer
    _, rids = make_item(sqlite_url, n=3)
    alice = keys_sqlite.headers("rater")

    async def scenario() -> tuple[list[httpx.Response], httpx.Response]:
        async with asgi_client(app) as client:
            gate = Gate(committer)
            tasks = await queue_up(client, committer, [("/v1/ratings", {"response_id": r, "score": 3}, alice) for r in rids[:2]])
            refused = await client.post("/v1/ratings", json={"response_id": rids[2], "score": 3}, headers=alice)
            gate.open()
            return list(await asyncio.gather(*tasks)), refused

    try:
        queued, refused = asyncio.run(scenario())
    finally:
        committer.close()
    assert [r.status_code for r in queued] == [201, 201]
    assert refused.status_code == 503 and refused.headers["Retry-After"] == "1"
    assert refused.json()["error"]["code"] == "overloaded"
    assert committer.stats.rejected == 1 and count(sqlite_url, Rating) == 2



def _insert(n: int) -> Callable:
    def work(session) -> int:
        session.execute(text("INSERT INTO t (n) VALUES (:n)"), {"n": n})
        return n

    return work


@pytest.fixture
def table_url(sqlite_url: str) -> str:
    with get_engine(sqlite_url).begin() as conn:
        conn.execute(text("CREATE TABLE t (n INTEGER PRIMARY KEY)"))
    return sqlite_url


def rows_of_t(url: str) -> list[int]:
    with get_engine(url).connect() as conn:
        return list(conn.scalars(text("SELECT n FROM t ORDER BY n")))


def test_close_drains_the_queue_then_refuses(table_url: str):
    committer = GroupCommitter(session_factory(table_url))
    gate = Gate(committer)
    futures = [committer.submit(_insert(n)) for n in range(5)]
    closer = threading.Thread(target=committer.close)
    closer.start()
    time.sleep(0.05)
    with pytest.raises(Unavailable):  # closing: no new work, even while draining
        committer.submit(_insert(99))
    gate.open()
    closer.join(30)
    assert not closer.is_alive()
    assert [f.result(0) for f in futures] == [0, 1, 2, 3, 4]
    assert rows_of_t(table_url) == [0, 1, 2, 3, 4]
    assert committer.stats.batches == 2 and committer.stats.largest_batch == 5


def test_batches_are_bounded_and_a_unit_error_stays_in_its_savepoint(table_url: str):
    committer = GroupCommitter(session_factory(table_url), max_batch=3)
    gate = Gate(committer)
    work = [_insert(1), _insert(2), _insert(1), _insert(3), _insert(4), _insert(5), _insert(6)]
    futures = [committer.submit(w) for w in work]
    gate.open()
    committer.close()
    from sqlalchemy.exc import IntegrityError

    with pytest.raises(IntegrityError):  # the duplicate key fails alone
        futures[2].result(0)
    assert [f.result(0) for i, f in enumerate(futures) if i != 2] == [1, 2, 3, 4, 5, 6]
    assert rows_of_t(table_url) == [1, 2, 3, 4, 5, 6]
    assert committer.stats.largest_batch == 3 and committer.stats.batches == 1 + 3  # gate, then 3 + 3 + 1


def test_max_wait_collects_a_fuller_batch(table_url: str):
    committer = GroupCommitter(session_factory(table_url), max_batch=4, max_wait_s=5.0)
    started = time.monotonic()
    futures = [committer.submit(_insert(n)) for n in range(4)]
    assert [f.result(30) for f in futures] == [0, 1, 2, 3]
    committer.close()
    assert committer.stats.batches == 1  # waited for the others instead of committing the first alone
    assert time.monotonic() - started < 5.0  # a full batch does not wait out max_wait

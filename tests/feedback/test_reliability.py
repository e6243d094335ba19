"""Durability under concurrency and crashes, against a real `llmops feedback serve` process.

- concurrent writers: rows stored == writes acknowledged (201), nothing more, nothing less;
- SIGKILL under load, restart: every acknowledged rating is in the database, and retrying
  the unacknowledged ones with their Idempotency-Keys stores each exactly once.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from sqlalchemy import func, select

from llmops.db import session_factory
from llmops.feedback.auth import create_key
from llmops.feedback.tables import Rating
from llmops.feedback.store import FeedbackStore

pytestmark = pytest.mark.slow


def seed(db_url: str, n_items: int, n_raters: int) -> tuple[list[int], list[str]]:
    store = FeedbackStore(db_url)
    responses: list[int] = []
    for i in range(n_items):
        responses += store.create_item(f"p{i}", [{"text": f"r{j}"} for j in range(16)]).response_ids
    with session_factory(db_url)() as s, s.begin():
        tokens = [create_key(s, "rater", f"rater-{k}").token for k in range(n_raters)]
    return responses, tokens


def stored_ids(db_url: str) -> set[int]:
    with session_factory(db_url)() as s:
        return set(s.scalars(select(Rating.id)))


def test_concurrent_writers_count_equals_acknowledged(db_url, server_factory):
    responses, tokens = seed(db_url, n_items=3, n_raters=6)
    srv = server_factory(db_url, workers=2)

    def rater(token: str) -> tuple[int, int]:
        acked = refused = 0
        with httpx.Client(base_url=srv.base, headers={"Authorization": f"Bearer {token}"}, timeout=30) as c:
            # Each response once, then a second pass of duplicates that must all be refused.
            for rid in responses + responses[:10]:
                r = c.post("/v1/ratings", json={"response_id": rid, "score": 1 + rid % 5})
                if r.status_code == 201:
                    acked += 1
                elif r.status_code == 409:
                    refused += 1
                else:
                    raise AssertionError(r.text)
        return acked, refused

    with ThreadPoolExecutor(len(tokens)) as pool:
        results = list(pool.map(rater, tokens))
    acked = sum(a for a, _ in results)
    assert acked == len(tokens) * len(responses)
    assert sum(r for _, r in results) == len(tokens) * 10
    with session_factory(db_url)() as s:
        assert s.scalar(select(func.count(Rating.id))) == acked


def test_sigkill_under_load_loses_no_acknowledged_rating(db_url, server_factory):
    responses, tokens = seed(db_url, n_items=4, n_raters=4)
    srv = server_factory(db_url, workers=1)
    acked: dict[str, int] = {}  # idempotency key → rating id the server acknowledged
    attempted: dict[str, tuple[str, dict]] = {}
    lock = threading.Lock()
    stop = threading.Event()

    def writer(token: str) -> None:
        with httpx.Client(base_url=srv.base, headers={"Authorization": f"Bearer {token}"}, timeout=10) as c:
            for rid in responses:
                if stop.is_set():
                    return
                key = f"{token[5:17]}-{rid}"
                body = {"response_id": rid, "score": 3}
                with lock:
                    attempted[key] = (token, body)
                try:
                    r = c.post("/v1/ratings", json=body, headers={"Idempotency-Key": key})
                except httpx.HTTPError:
                    return  # the server died mid-request: not acknowledged
                if r.status_code == 201:
                    with lock:
                        acked[key] = r.json()["id"]

    threads = [threading.Thread(target=writer, args=(t,)) for t in tokens]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 20
    while len(acked) < 40 and time.monotonic() < deadline:
        time.sleep(0.01)
    srv.kill()  # SIGKILL: no shutdown hooks, no flush
    stop.set()
    for t in threads:
        t.join(15)
    assert len(acked) >= 40, "the load never got going"

    assert set(acked.values()) <= stored_ids(db_url)  # every acknowledged rating survived

    srv2 = server_factory(db_url, workers=1)
    for key, (token, body) in attempted.items():  # a client retrying everything it is unsure of
        r = httpx.post(srv2.base + "/v1/ratings", json=body, timeout=10,
                       headers={"Authorization": f"Bearer {token}", "Idempotency-Key": key})
        assert r.status_code == 201, r.text
        if key in acked:
            assert r.json()["id"] == acked[key]  # replayed, not written again
    assert len(stored_ids(db_url)) == len(attempted)  # each attempted write stored exactly once

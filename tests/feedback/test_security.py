"""Keys are checked before anything is queued; a flood (fake keys, or one greedy key) starves nobody."""

from __future__ import annotations

import asyncio
import os

import httpx
import pytest

from .helpers import Server, make_keys, new_item


def test_key_verifier_caches_and_honours_revocation_within_its_ttl(sqlite_url: str) -> None:
    from functools import partial

    from llmops.db import session_factory
    from llmops.db.engine import read_only_session
    from llmops.feedback.auth import KeyVerifier, revoke_key
    from llmops.feedback.errors import Unauthenticated

    keys = make_keys(sqlite_url)
    now = [0.0]
    v = KeyVerifier(partial(read_only_session, sqlite_url), ttl_s=5.0, clock=lambda: now[0])
    assert v.authenticate(keys.rater).rater_name == "alice" and v.lookups == 1
    assert v.authenticate(keys.rater).role.value == "rater" and v.lookups == 1  # cached: no second read
    fake = "llmf_0123456789ab_notarealsecret"
    for _ in range(3):
        with pytest.raises(Unauthenticated):
            v.authenticate(fake)
    assert v.lookups == 2  # the failure is cached too: a repeated fake costs one read per TTL
    with session_factory(sqlite_url)() as s, s.begin():
        revoke_key(s, keys.rater.split("_")[1])
    assert v.authenticate(keys.rater)  # still cached (bounded delay) ...
    now[0] += 5.01
    with pytest.raises(Unauthenticated, match="revoked"):  # ... and refused once the TTL has passed
        v.authenticate(keys.rater)


def test_authenticate_is_a_plain_function_for_other_subsystems(sqlite_url: str) -> None:
    from llmops.feedback.auth import authenticate
    from llmops.feedback.errors import Unauthenticated

    keys = make_keys(sqlite_url)
    assert authenticate(keys.admin, sqlite_url).role.value == "admin"
    with pytest.raises(Unauthenticated):
        authenticate("llmf_0123456789ab_wrong", sqlite_url)


async def _post(c: httpx.AsyncClient, path: str, body: dict, headers: dict) -> int:
    """Status code, or 0 when the connection failed (a keep-alive connection closed under load)."""
    try:
        return (await c.post(path, json=body, headers=headers)).status_code
    except httpx.TransportError:
        return 0


async def _flood(base: str, keys, rids: list[int]) -> tuple[list[int], list[int], list[int]]:
    limits = httpx.Limits(max_connections=100, max_keepalive_connections=100)
    async with httpx.AsyncClient(base_url=base, timeout=60, limits=limits) as c:
        fakes = [f"llmf_{i:012x}_{'x' * 40}" for i in range(300)]  # well-formed, distinct, unknown
        fake = [_post(c, "/v1/ratings", {"response_id": rids[0], "score": 3}, {"Authorization": f"Bearer {t}"})
                for t in fakes]
        # one valid key sending far more at once than its share of the queue
        greedy = [_post(c, "/v1/items", {"prompt": "p", "responses": [{"text": "t"}]}, keys.headers("service"))
                  for _ in range(60)]

        async def rater(who: str) -> list[int]:
            """A person: one rating after the other during the flood; a dropped connection is retried with
            the same Idempotency-Key (as a real client does), so a retry can never store twice."""
            codes = []
            for rid in rids:
                h = {**keys.headers(who), "Idempotency-Key": f"{who}-{rid}"}
                for _attempt in range(3):
                    code = await _post(c, "/v1/ratings", {"response_id": rid, "score": 4}, h)
                    if code:
                        break
                codes.append(code)
            return codes

        answers = await asyncio.gather(*fake, *greedy, rater("rater"), rater("rater2"))
    return answers[:len(fake)], answers[len(fake):len(fake) + len(greedy)], answers[-2] + answers[-1]


def test_a_flood_of_fake_keys_and_a_greedy_key_starve_no_valid_rater(sqlite_url: str, monkeypatch) -> None:
    """A tiny write queue (8) and share (4 per key): if fakes reached the writer, or one key could
    take the whole queue, the valid raters would get 503/429. They get 201, every one of them."""
    keys = make_keys(sqlite_url)
    from fastapi.testclient import TestClient

    from llmops.feedback.api import create_app

    with TestClient(create_app(sqlite_url), base_url="http://localhost") as c:
        item = new_item(c, keys, n=16)
    monkeypatch.setenv("LLMOPS_FEEDBACK_MAX_QUEUE", "8")
    monkeypatch.setenv("LLMOPS_FEEDBACK_MAX_PER_KEY", "4")
    srv = Server(sqlite_url).start()
    try:
        fake, greedy, valid = asyncio.run(_flood(srv.base, keys, item["response_ids"]))
    finally:
        srv.stop()
    assert set(fake) <= {401, 0} and fake.count(401) > len(fake) // 2  # 0: a connection the load dropped
    assert set(valid) == {201}, valid  # 32 ratings from two raters, all stored
    # The greedy key is held to its share when its writes pile up (429); on an idle machine the
    # writer may drain them first, so the share itself is pinned by the Intake test below.
    assert set(greedy) <= {201, 429, 0}
    assert os.environ["LLMOPS_FEEDBACK_MAX_QUEUE"] == "8"


def test_database_errors_never_carry_bound_parameters(sqlite_url: str) -> None:
    """`hide_parameters`: a failing statement's message (which reaches the log) omits the values."""
    from sqlalchemy import text
    from sqlalchemy.exc import IntegrityError

    from llmops.db import get_engine

    make_keys(sqlite_url)
    secretish = "rater-text-that-must-not-reach-a-log"
    with pytest.raises(IntegrityError) as err, get_engine(sqlite_url).begin() as conn:
        conn.execute(text("INSERT INTO feedback_raters (id, name, created_at) VALUES (1, :n, '2026-01-01')"),
                     {"n": secretish})
    assert secretish not in str(err.value) and "hidden due to hide_parameters" in str(err.value)


def test_postgres_sessions_have_connect_statement_and_lock_timeouts(pg_url: str, monkeypatch) -> None:
    from llmops.db.engine import _engine_for, get_engine

    with get_engine(pg_url).connect() as conn:
        got = {name: conn.exec_driver_sql(f"SHOW {name}").scalar()
               for name in ("statement_timeout", "lock_timeout", "idle_in_transaction_session_timeout")}
        dsn = conn.connection.dbapi_connection.info.dsn
    assert got == {"statement_timeout": "30s", "lock_timeout": "5s", "idle_in_transaction_session_timeout": "1min"}
    assert "connect_timeout=5" in dsn.split()
    _engine_for.cache_clear()
    monkeypatch.setenv("LLMOPS_PG_LOCK_TIMEOUT_MS", "1500")
    with get_engine(pg_url).connect() as conn:
        assert conn.exec_driver_sql("SHOW lock_timeout").scalar() == "1500ms"
    _engine_for.cache_clear()


def test_one_key_holds_at_most_its_share_of_the_write_queue():
    """Deterministic: the admission rule the flood test relies on, without timing."""
    from llmops.feedback.group_commit import Intake, Overloaded, TooManyRequests

    intake = Intake(max_batch=8, max_queue=8, max_per_owner=4, hang_after_s=5.0)
    for queued in range(4):
        intake.admit("greedy", queued)
    with pytest.raises(TooManyRequests, match="4 writes in flight"):
        intake.admit("greedy", 4)
    intake.admit("rater", 4)  # another key still gets in
    with pytest.raises(Overloaded):
        intake.admit("rater", 8)
    intake._release("greedy")
    intake.admit("greedy", 5)  # a finished write frees a slot of that key


def test_a_key_in_use_is_refreshed_before_it_expires_and_misses_share_one_read(sqlite_url: str) -> None:
    """No request of an active key waits on the database at its TTL (the 5-s stalls under load), a
    revocation still lands within the TTL, and concurrent misses of one key make a single read."""
    from functools import partial

    from llmops.db import session_factory
    from llmops.db.engine import read_only_session
    from llmops.feedback.api.call import verify
    from llmops.feedback.auth import AUTH_REFRESH_WINDOW, KeyVerifier, revoke_key
    from llmops.feedback.errors import Unauthenticated

    keys = make_keys(sqlite_url)
    now = [0.0]
    v = KeyVerifier(partial(read_only_session, sqlite_url), ttl_s=10.0, clock=lambda: now[0])

    async def scenario() -> None:
        got = await asyncio.gather(*(verify(v, keys.rater) for _ in range(20)))  # a cold burst of one key
        assert {p.rater_name for p in got} == {"alice"} and v.lookups == 1 and not v.inflight
        assert v.peek(keys.rater)[1] is False  # fresh
        now[0] = 10.0 * AUTH_REFRESH_WINDOW[1] + 0.01  # past any refresh point, before expiry
        assert v.peek(keys.rater)[1] is True
        with session_factory(sqlite_url)() as s, s.begin():
            revoke_key(s, keys.rater.split("_")[1])
        assert (await verify(v, keys.rater)).rater_name == "alice"  # answered from the cache at once ...
        for _ in range(200):  # ... while one background read runs
            if not v.inflight:
                break
            await asyncio.sleep(0.01)
        assert v.lookups == 2
        with pytest.raises(Unauthenticated, match="revoked"):  # the refreshed answer: revoked, before the TTL
            await verify(v, keys.rater)

    asyncio.run(scenario())


def test_a_caller_that_goes_away_does_not_cancel_the_shared_read(sqlite_url: str) -> None:
    from functools import partial

    from llmops.db.engine import read_only_session
    from llmops.feedback.api.call import verify
    from llmops.feedback.auth import KeyVerifier

    keys = make_keys(sqlite_url)
    v = KeyVerifier(partial(read_only_session, sqlite_url))
    slow = v.lookup
    v.lookup = lambda token: (__import__("time").sleep(0.2), slow(token))[1]  # type: ignore[method-assign]

    async def scenario() -> None:
        first = asyncio.create_task(verify(v, keys.rater2))
        second = asyncio.create_task(verify(v, keys.rater2))
        await asyncio.sleep(0.05)
        first.cancel()  # its client disconnected
        assert (await second).rater_name == "bob" and v.lookups == 1

    asyncio.run(scenario())


def test_keys_first_seen_together_are_refreshed_at_different_times(sqlite_url: str) -> None:
    from functools import partial

    from llmops.db import session_factory
    from llmops.db.engine import read_only_session
    from llmops.feedback.auth import AUTH_REFRESH_WINDOW, KeyVerifier, create_key

    make_keys(sqlite_url)  # the schema
    with session_factory(sqlite_url)() as s, s.begin():
        tokens = [create_key(s, "rater", f"r{i}").token for i in range(40)]
    now = [0.0]
    v = KeyVerifier(partial(read_only_session, sqlite_url), ttl_s=4.0, clock=lambda: now[0])
    for t in tokens:
        v.authenticate(t)
    # the first instant each key is due for a refresh, on a 10-ms grid over its TTL
    due = sorted(min(step * 0.01 for step in range(400) if _due(v, now, t, step)) for t in tokens)
    assert 4.0 * AUTH_REFRESH_WINDOW[0] <= due[0] and due[-1] <= 4.0 * AUTH_REFRESH_WINDOW[1] + 0.01
    assert due[-1] - due[0] > 0.5  # spread over the window, not one instant


def _due(v, now, token, step) -> bool:
    now[0] = step * 0.01
    return v.peek(token)[1]

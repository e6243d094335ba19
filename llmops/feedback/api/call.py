"""One request's unit of work: authenticate, authorize, run, record the idempotent answer, commit.

The key is verified and the action authorized in the request dependency, *before*
anything is queued (`llmops.feedback.auth.KeyVerifier`: a cached hashed lookup, so a
known key costs no database access and a fake one never reaches the writer). A write runs as ONE unit of the group committer (`llmops.feedback.group_commit`): its
authentication, its row(s) and its idempotency record share a savepoint of a batch
transaction, and the request is answered only after that transaction committed. So a
write is acknowledged only once durable, and a retry with the same ``Idempotency-Key``
finds the record instead of writing again (even when both land in the same batch).
The key is scoped to the caller's rater identity. Reads run in their own read-only
transaction (``BEGIN DEFERRED`` on SQLite, so they never wait for the writer).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import Row, bindparam, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from llmops.feedback import metrics
from llmops.feedback.auth import KeyVerifier, sha256_hex
from llmops.feedback.errors import Invalid, Unauthenticated
from llmops.feedback.group_commit import GroupCommitter
from llmops.feedback.tables import IdempotencyRecord
from llmops.feedback.policies import Action, Principal, authorize
from llmops.feedback.schemas import MAX_IDEMPOTENCY_KEY_CHARS
from llmops.feedback.store import integrity_error

# Documented on every authenticated route (the dependency itself reads the headers directly).
OPENAPI_AUTH = {
    "security": [{"bearer": []}],
    "parameters": [{"name": "Idempotency-Key", "in": "header", "required": False, "schema": {
        "type": "string", "maxLength": MAX_IDEMPOTENCY_KEY_CHARS, "pattern": "^[!-~]+$"},
        "description": "Retry-safe writes: the same key and body return the first answer and store nothing twice."}],
}
SessionFactory = Callable[[], Session]


@dataclass
class Call:
    action: Action
    principal: Principal  # verified and authorized before the route runs
    idempotency_key: str | None
    route: str
    sessions: SessionFactory  # read-write transactions (BEGIN IMMEDIATE on SQLite)
    read_sessions: SessionFactory  # read-only transactions (BEGIN DEFERRED on SQLite)
    committer: GroupCommitter
    options: Any = None  # the app's `FeedbackOptions` (rater view, ...)
    snapshot_sessions: SessionFactory | None = None  # pinned read snapshots (REPEATABLE READ READ ONLY on PostgreSQL)

    def read(self, fn: Callable[[Session, Principal], Any]) -> Any:
        """Run a read-only `fn` (it must not write: the transaction may be DEFERRED)."""
        with self.read_sessions() as session, session.begin():
            return fn(session, self.principal)

    def transact(self, fn: Callable[[Session, Principal], Any]) -> Any:
        """Run `fn` in its own read-write transaction (rare admin writes without idempotency keys)."""
        with self.sessions() as session, session.begin():
            return fn(session, self.principal)

    async def write(
        self,
        fn: Callable[[Session, Principal], Any],
        payload: BaseModel,
        *,
        status: int = 201,
        kind: str,
        stored: Callable[[dict], dict] | None = None,
        core: bool = False,
    ) -> JSONResponse:
        """Apply `fn` through the group committer; answer only after its batch committed.

        `stored` maps the answer to what the idempotency record keeps (default: the answer
        itself); key creation passes a redactor, so no secret is ever written to the store.
        `core=True` declares that `fn` uses Core statements only (no ORM objects), which lets
        the committer isolate it with a plain SAVEPOINT (`group_commit.Intake.apply_unit`).
        """
        fingerprint = (
            hashlib.sha256(
                json.dumps([self.route, payload.model_dump(mode="json")], sort_keys=True, separators=(",", ":")).encode()
            ).hexdigest()
            if self.idempotency_key
            else ""
        )
        principal = self.principal

        def work(session: Session) -> tuple[JSONResponse, bool]:  # (answer, written rather than replayed)
            if self.idempotency_key:
                record = _idempotency_record(session, principal.rater_id, self.idempotency_key)
                if record is not None:  # committed earlier, or earlier in this very batch
                    return _replay(record, fingerprint), False
            body = fn(session, principal)
            body = body.model_dump(mode="json") if isinstance(body, BaseModel) else body
            if self.idempotency_key:
                session.connection().execute(
                    _INSERT_IDEMPOTENCY,
                    {
                        "rater_id": principal.rater_id,
                        "key": self.idempotency_key,
                        "request_sha256": fingerprint,
                        "status_code": status,
                        "response_body": stored(body) if stored else body,
                    },
                )
            return JSONResponse(body, status_code=status), True

        try:
            work.core_only = core  # type: ignore[attr-defined]
            response, written = await self.committer.run(work, owner=principal.key_id)  # after the batch's COMMIT
        except IntegrityError as exc:
            if self.idempotency_key:
                # Another process committed the same key first: answer as it did.
                record = await run_in_threadpool(self._committed_record, principal.rater_id)
                if record is not None:
                    metrics.REPLAYS.inc()
                    return _replay(record, fingerprint)
            raise integrity_error(exc) from exc
        if written:
            metrics.WRITES.labels(kind).inc()
        else:
            metrics.REPLAYS.inc()
        return response

    def _committed_record(self, rater_id: int) -> Row | None:
        with self.read_sessions() as session, session.begin():
            return _idempotency_record(session, rater_id, self.idempotency_key)


_IDEMPOTENCY_LOOKUP = select(
    IdempotencyRecord.request_sha256, IdempotencyRecord.status_code, IdempotencyRecord.response_body
).where(IdempotencyRecord.rater_id == bindparam("rater_id"), IdempotencyRecord.key == bindparam("key"))
_INSERT_IDEMPOTENCY = insert(IdempotencyRecord)


def _idempotency_record(session: Session, rater_id: int, key: str | None) -> Row | None:
    return session.connection().execute(_IDEMPOTENCY_LOOKUP, {"rater_id": rater_id, "key": key}).first()


def _replay(record: Row, fingerprint: str) -> JSONResponse:
    if record.request_sha256 != fingerprint:
        raise Invalid(
            "Idempotency-Key was already used with a different request body or endpoint",
            field="Idempotency-Key",
            code="idempotency_key_reused",
        )
    return JSONResponse(record.response_body, status_code=record.status_code, headers={"Idempotent-Replayed": "true"})


_IDEMPOTENCY_KEY = re.compile(rf"[!-~]{{1,{MAX_IDEMPOTENCY_KEY_CHARS}}}")  # printable ASCII, no spaces


def call_for(action: Action) -> Callable[..., Call]:
    """A dependency giving the route a `Call` for `action`: 401/403 before anything is queued.

    It reads the two headers itself (no FastAPI sub-dependencies or header models): this
    runs on every request, and at 1,000 ratings/s each 0.1 ms of it is a tenth of a core.
    The OpenAPI schema still documents the bearer scheme and the Idempotency-Key header.
    """

    async def dependency(request: Request) -> Call:
        headers = request.headers
        scheme, _, token = headers.get("authorization", "").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise Unauthenticated("missing bearer API key (Authorization: Bearer llmf_...)")
        idempotency_key = headers.get("idempotency-key")
        if idempotency_key is not None and not _IDEMPOTENCY_KEY.fullmatch(idempotency_key):
            raise Invalid(f"Idempotency-Key must be 1..{MAX_IDEMPOTENCY_KEY_CHARS} printable ASCII characters "
                          "without spaces", field="Idempotency-Key")
        state = request.app.state
        principal = await verify(state.verifier, token)
        authorize(principal, action)
        matched = request.scope.get("route")  # not getattr(..., request.url.path): that builds a URL every call
        route = matched.path if matched is not None else request.url.path
        return Call(
            action,
            principal,
            idempotency_key or None,
            route,
            state.sessions,
            state.read_sessions,
            state.committer,
            getattr(state, "options", None),
            getattr(state, "snapshot_sessions", None),
        )

    return dependency


async def verify(verifier: KeyVerifier, token: str) -> Principal:
    """The token's principal: from the cache on the loop, else one read in a worker thread.

    A key in use is refreshed in the background before its cached answer expires, and
    concurrent misses of one key share a single read (`_lookup_once`). Before, every active
    key expired at the same moment every TTL and each of its requests in that window made
    its own read in a thread: at 1,000 ratings/s from 50 keys, a ~130 ms stall of every
    request every 5 s (traced with `benchmarks/feedback_load.py`, 2026-12-01). Refreshes
    start at a random point of each key's TTL and run one at a time in one thread.
    """
    principal, refresh = verifier.peek(token)
    if principal is None:
        # shielded: a caller that goes away (client disconnect) must not cancel the others' read
        return await asyncio.shield(_lookup_once(verifier, token))
    if refresh:
        _lookup_once(verifier, token, background=True)  # the cached answer still holds until it expires
    return principal


def _lookup_once(verifier: KeyVerifier, token: str, *, background: bool = False) -> asyncio.Future:
    """The database read of `token`, shared by every caller while it runs (per event loop).

    Background refreshes queue on the verifier's one refresh thread; a read someone waits
    for takes a worker thread of its own.
    """
    loop = asyncio.get_running_loop()
    inflight = verifier.inflight
    digest = sha256_hex(token)  # the cache's key: no token kept
    future = inflight.get(digest)
    if future is None or future.get_loop() is not loop:
        read = (loop.run_in_executor(verifier.refresher(), verifier.lookup, token) if background
                else asyncio.ensure_future(run_in_threadpool(verifier.lookup, token)))
        future = inflight[digest] = read

        def settled(f: asyncio.Future) -> None:
            if inflight.get(digest) is f:
                del inflight[digest]
            if not f.cancelled():
                f.exception()  # retrieved: a background refresh's error shows on the next foreground read

        future.add_done_callback(settled)
    return future

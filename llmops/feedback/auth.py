"""API keys: ``llmf_<key_id>_<secret>``, of which only sha256(secret) is stored.

The key id is a public lookup handle (shown by ``keys list``); the 256-bit secret is
compared in constant time. `KeyVerifier` checks a token *before* any work is queued
(the request dependency calls it): answers are cached by sha256(token) for at most
``ttl_s`` seconds, so a revoked key stops working within that delay, and unknown or
wrong tokens are cached too, so a flood of fake tokens costs one read per distinct
token per TTL and never reaches the writer. `authenticate(token)` is the same check
as a plain function (process-wide verifier per database), for other subsystems that
accept these keys by dependency injection. A high-entropy random secret needs no slow password hash:
sha256 cannot be brute-forced back from 2**256. There are no default credentials: the
first admin key comes from ``llmops feedback keys create --role admin`` on the server.
"""

from __future__ import annotations

import hashlib
import hmac
import random
import re
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from llmops.feedback.errors import Conflict, NotFound, Unauthenticated
from llmops.feedback.tables import ApiKey, Rater, utcnow
from llmops.feedback.policies import Principal, Role

PREFIX = "llmf"
KEY_ID_BYTES = 6  # 12 hex chars
SECRET_BYTES = 32
_KEY_ID = re.compile(r"[0-9a-f]{1,32}")
_SECRET = re.compile(r"[A-Za-z0-9\-]{1,128}")


def sha256_hex(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def parse_token(token: str) -> tuple[str, str]:
    """Split ``llmf_<key_id>_<secret>`` (raises Unauthenticated on anything else)."""
    parts = token.split("_")
    if len(parts) != 3 or parts[0] != PREFIX or not _KEY_ID.fullmatch(parts[1]) or not _SECRET.fullmatch(parts[2]):
        raise Unauthenticated("malformed API key (expected llmf_<id>_<secret>)")
    return parts[1], parts[2]


@dataclass(frozen=True)
class NewKey:
    key_id: str
    role: str
    name: str
    created_at: datetime
    token: str  # the only time the secret exists outside the caller's hands


def create_key(session: Session, role: str, name: str | None = None) -> NewKey:
    """Create a key (and its rater identity, reused when ``name`` exists). Caller commits."""
    role_ = Role(role)
    key_id = secrets.token_hex(KEY_ID_BYTES)
    secret = secrets.token_urlsafe(SECRET_BYTES).replace("_", "-")
    name = name or f"{role_.value}-{key_id}"
    rater = session.scalar(select(Rater).where(Rater.name == name))
    if rater is None:
        rater = Rater(name=name)
        session.add(rater)
        try:
            with session.begin_nested():
                session.flush()
        except IntegrityError as exc:  # created concurrently
            raise Conflict(f"rater name {name!r} was taken concurrently; retry", field="name") from exc
    key = ApiKey(key_id=key_id, secret_sha256=sha256_hex(secret), role=role_.value, rater_id=rater.id)
    session.add(key)
    session.flush()
    return NewKey(key_id, role_.value, name, key.created_at, f"{PREFIX}_{key_id}_{secret}")


def list_keys(session: Session) -> list[ApiKey]:
    return list(session.scalars(select(ApiKey).order_by(ApiKey.id)))


def revoke_key(session: Session, key_id: str) -> ApiKey:
    key = session.scalar(select(ApiKey).where(ApiKey.key_id == key_id))
    if key is None:
        raise NotFound(f"no API key with id {key_id!r}", field="key_id")
    if key.revoked_at is None:
        key.revoked_at = utcnow()
    return key


# Built once: the hot path of every request (statement construction costs more than SQLite's lookup).
_KEY_LOOKUP = (
    select(ApiKey.secret_sha256, ApiKey.role, ApiKey.revoked_at, Rater.id, Rater.name)
    .join(Rater, Rater.id == ApiKey.rater_id)
    .where(ApiKey.key_id == bindparam("key_id"))
)
_MEMO = "llmops.feedback.principals"


def verify_in_session(session: Session, token: str) -> Principal:
    """The principal of a bearer token; Unauthenticated when unknown, revoked or wrong.

    Successes are remembered for the rest of the session's transaction (``session.info``):
    a group-commit batch authenticates each distinct key once. That answer is the one of
    the transaction's snapshot, so revocation still takes effect on the next transaction.
    """
    connection = session.connection()  # begins the transaction if it has not begun
    transaction, memo = session.info.get(_MEMO, (None, {}))
    if transaction is not session.get_transaction():  # a new transaction forgets the old answers
        memo = {}
        session.info[_MEMO] = (session.get_transaction(), memo)
    if (known := memo.get(token)) is not None:
        return known
    key_id, secret = parse_token(token)
    row = connection.execute(_KEY_LOOKUP, {"key_id": key_id}).first()
    # Compare even when the key id is unknown so timing does not reveal which ids exist.
    expected = row.secret_sha256 if row else "0" * 64
    if not hmac.compare_digest(expected, sha256_hex(secret)) or row is None:
        raise Unauthenticated("invalid API key")
    if row.revoked_at is not None:
        raise Unauthenticated("API key revoked")
    memo[token] = principal = Principal(key_id=key_id, role=Role(row.role), rater_id=row.id, rater_name=row.name)
    return principal


AUTH_CACHE_TTL_S = 5.0  # the longest a revoked key keeps working on a running server
# A key in use is looked up again at a random point between these shares of its TTL, while the
# cached answer still holds: an active key never misses the cache (its requests never wait on the
# database), and keys first seen together are not all refreshed at the same instant.
AUTH_REFRESH_WINDOW = (0.5, 0.75)
AUTH_CACHE_MAX = 10_000  # distinct tokens remembered (LRU); a flood of fresh fakes only evicts fakes' answers


class KeyVerifier:
    """Token → principal before any work is queued: a cached, hashed lookup in a read-only transaction.

    The cache is keyed by sha256(token) (no token is kept) and holds successes and
    failures alike for `ttl_s`; `forget()` drops everything (e.g. right after a revoke
    on this process). Thread-safe; `cached()` never touches the database, so an event
    loop can answer a known key without a thread hop.
    """

    def __init__(self, read_session: Callable[[], Session], *, ttl_s: float = AUTH_CACHE_TTL_S,
                 max_entries: int = AUTH_CACHE_MAX, clock: Callable[[], float] = time.monotonic) -> None:
        self._read_session = read_session
        self.ttl_s, self.max_entries, self._clock = ttl_s, max_entries, clock
        self._cache: OrderedDict[str, tuple[float, float, Principal | Unauthenticated]] = OrderedDict()
        self._lock = threading.Lock()
        self.lookups = 0  # database lookups made (tests and metrics)
        self.inflight: dict[str, Any] = {}  # sha256(token) -> the async callers' shared read (`api.call.verify`)
        self._refresher: ThreadPoolExecutor | None = None

    def refresher(self) -> ThreadPoolExecutor:
        """One thread for background refreshes: they queue instead of each taking a thread and the GIL."""
        with self._lock:
            if self._refresher is None:
                self._refresher = ThreadPoolExecutor(1, thread_name_prefix="key-refresh")
            return self._refresher

    def cached(self, token: str) -> Principal | None:
        """The cached principal, or None when the database must be asked; raises a cached failure."""
        return self.peek(token)[0]

    def peek(self, token: str) -> tuple[Principal | None, bool]:
        """`cached(token)`, and whether the answer is due for a refresh (past its point in
        `AUTH_REFRESH_WINDOW`: still valid, but worth asking again now)."""
        digest = sha256_hex(token)
        with self._lock:
            entry = self._cache.get(digest)
            if entry is None:
                return None, False
            expires, refresh_at, answer = entry
            now = self._clock()
            if expires < now:
                del self._cache[digest]
                return None, False
            self._cache.move_to_end(digest)
        if isinstance(answer, Unauthenticated):
            raise Unauthenticated(answer.message)
        return answer, now >= refresh_at

    def authenticate(self, token: str) -> Principal:
        """The principal of `token` (Unauthenticated when malformed, unknown, wrong or revoked)."""
        if (known := self.cached(token)) is not None:
            return known
        return self.lookup(token)

    def lookup(self, token: str) -> Principal:
        """Ask the database (whatever the cache holds) and cache the answer for `ttl_s`."""
        parse_token(token)  # malformed: refused without a lookup, and not cached (cheap anyway)
        try:
            with self._read_session() as session, session.begin():
                self.lookups += 1
                answer: Principal | Unauthenticated = verify_in_session(session, token)
        except Unauthenticated as exc:
            answer = exc
        with self._lock:
            now = self._clock()
            refresh_at = now + self.ttl_s * random.uniform(*AUTH_REFRESH_WINDOW)
            digest = sha256_hex(token)
            self._cache[digest] = (now + self.ttl_s, refresh_at, answer)
            self._cache.move_to_end(digest)
            while len(self._cache) > self.max_entries:
                self._cache.popitem(last=False)
        if isinstance(answer, Unauthenticated):
            raise answer
        return answer

    def forget(self) -> None:
        with self._lock:
            self._cache.clear()


_verifiers: dict[str, KeyVerifier] = {}
_verifiers_lock = threading.Lock()


def verifier_for(db_url: str | None = None) -> KeyVerifier:
    """The process-wide verifier of a database (one cache per URL)."""
    from functools import partial

    from llmops.db.engine import read_only_session
    from llmops.settings import database_url

    url = database_url(db_url)
    with _verifiers_lock:
        if url not in _verifiers:
            _verifiers[url] = KeyVerifier(partial(read_only_session, url))
        return _verifiers[url]


def authenticate(token: str, db_url: str | None = None) -> Principal:
    """`authenticate(token) -> Principal`: the API-key check as a plain function (cached, see `KeyVerifier`)."""
    return verifier_for(db_url).authenticate(token)

"""A request id for every request: in the ``X-Request-ID`` answer header, in error bodies, in server logs.

Clients get generic messages for server-side failures ("internal error, request id
...") and the operator finds the details under that id in the log: nothing about the
database, the query or its parameters reaches the client. A well-formed incoming
``X-Request-ID`` (from a proxy) is kept, so ids join up across hops.
"""

from __future__ import annotations

import contextvars
import itertools
import os
import re

_ID = re.compile(r"[A-Za-z0-9._-]{8,64}")
current: contextvars.ContextVar[str] = contextvars.ContextVar("llmops_request_id", default="-")
# A random per-process prefix and a counter: unique across processes and restarts, and no
# system call per request (uuid4 reads os.urandom each time: 2-50 us, under load the most).
_PREFIX = os.urandom(8).hex()
_counter = itertools.count(1)
_served = [0]  # requests that entered this process (the warm-up freeze reads it)


def _reseed() -> None:  # a forked worker must not repeat its parent's ids
    global _PREFIX, _counter
    _PREFIX, _counter = os.urandom(8).hex(), itertools.count(1)


os.register_at_fork(after_in_child=_reseed)


def new_id() -> str:
    """A fresh request id: 16 hex digits of this process, a dash, a sequence number."""
    return f"{_PREFIX}-{next(_counter):x}"


def requests_served() -> int:
    """How many HTTP requests this process has started handling."""
    return _served[0]


def request_id() -> str:
    """The id of the request being handled (``-`` outside a request)."""
    return current.get()


class RequestId:
    """Pure-ASGI middleware: pick the id, expose it to handlers and logs, answer it in a header."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        _served[0] += 1
        rid = None
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                candidate = value.decode("latin-1")
                rid = candidate if _ID.fullmatch(candidate) else None
                break
        rid = rid or new_id()
        token = current.set(rid)
        scope.setdefault("state", {})["request_id"] = rid

        async def send_with_id(message):
            if message["type"] == "http.response.start":
                headers = [h for h in message.get("headers", []) if h[0].lower() != b"x-request-id"]
                message = {**message, "headers": [*headers, (b"x-request-id", rid.encode())]}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            current.reset(token)

"""A request id for every request: in the ``X-Request-ID`` answer header, in error bodies, in server logs.

Clients get generic messages for server-side failures ("internal error, request id
...") and the operator finds the details under that id in the log: nothing about the
database, the query or its parameters reaches the client. A well-formed incoming
``X-Request-ID`` (from a proxy) is kept, so ids join up across hops.
"""

from __future__ import annotations

import contextvars
import re
import uuid

_ID = re.compile(r"[A-Za-z0-9._-]{8,64}")
current: contextvars.ContextVar[str] = contextvars.ContextVar("llmops_request_id", default="-")


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
        rid = None
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                candidate = value.decode("latin-1")
                rid = candidate if _ID.fullmatch(candidate) else None
                break
        rid = rid or uuid.uuid4().hex
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

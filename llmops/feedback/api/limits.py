"""Reject oversized request bodies before anything parses them (pure ASGI, no buffering)."""

from __future__ import annotations

import json

from llmops.feedback.schemas import MAX_BODY_BYTES, MAX_BULK_BODY_BYTES


def limit_for(path: str) -> int:
    return MAX_BULK_BODY_BYTES if path.endswith(("/bulk", "/answers")) else MAX_BODY_BYTES


async def _send_413(send, limit: int) -> None:
    body = json.dumps(
        {"error": {"code": "body_too_large", "message": f"request body exceeds {limit} bytes", "field": "body"}}
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


class BodySizeLimit:
    """413 when Content-Length, or the bytes actually streamed (chunked uploads), pass the limit."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = limit_for(scope["path"])
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = limit + 1
                if declared > limit:
                    await _send_413(send, limit)
                    return
        received = 0
        rejected = False

        async def counting_receive():
            nonlocal received, rejected
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit and not rejected:
                    # Answer 413 now and tell the app the client went away: it stops reading.
                    rejected = True
                    await _send_413(send, limit)
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message):
            if not rejected:  # after our 413 the app's own answer is dropped
                await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except Exception:
            if not rejected:
                raise

"""Notifications of alert events: a log line, or a signed webhook POST retried with backoff.

Every event carries an `event_id` (also stored with the event row): a receiver that sees the
same id twice (a retry after a lost response) must treat it as one notification.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import time
from typing import Any

from llmops.monitor.rules import LogAction, WebhookAction

log = logging.getLogger("llmops.monitor.alerts")
_RETRY_STATUS = {408, 425, 429, 500, 502, 503, 504}


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """HMAC-SHA256 over ``timestamp.body``; receivers recompute it and reject stale timestamps."""
    return "sha256=" + hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def post_webhook(action: WebhookAction, payload: dict[str, Any], sleep=time.sleep) -> dict[str, Any]:
    """POST with retries on connection errors, 408/425/429 and 5xx; 4xx otherwise is final (the receiver said no)."""
    import httpx

    body = json.dumps(payload, sort_keys=True).encode()
    attempts, last = 0, ""
    for attempt in range(action.retries + 1):
        attempts = attempt + 1
        ts = str(int(time.time()))  # re-signed per attempt: receivers reject stale timestamps
        headers = {"Content-Type": "application/json", "X-LLMOps-Timestamp": ts, "X-LLMOps-Event-Id": payload["event_id"],
                   "X-LLMOps-Signature": sign(os.environ[action.secret_env], ts, body)}
        try:
            resp = httpx.post(action.url, content=body, headers=headers, timeout=action.timeout_s)
        except httpx.HTTPError as exc:
            last = f"{type(exc).__name__}: {exc}"
        else:
            if resp.status_code < 400:
                return {"type": "webhook", "ok": True, "status": resp.status_code, "attempts": attempts}
            last = f"HTTP {resp.status_code}"
            if resp.status_code not in _RETRY_STATUS:
                break
        if attempt < action.retries:
            sleep(action.backoff_s * 2 ** attempt)
    return {"type": "webhook", "ok": False, "error": last, "attempts": attempts}


def notify(action: Any, payload: dict[str, Any]) -> dict[str, Any] | None:
    """Run one notification action for an event; None when the action does not take this event."""
    if isinstance(action, LogAction):
        level = logging.INFO if payload["event"] == "resolved" else logging.WARNING
        log.log(level, "alert %s %s: value %s (%s) [incident %s, event %s]", payload["rule"], payload["event"],
                payload["value"], payload["detail"], payload.get("incident_id"), payload["event_id"])
        return {"type": "log", "ok": True}
    if isinstance(action, WebhookAction):
        if payload["event"] not in action.events:
            return None
        return post_webhook(action, payload)
    return None

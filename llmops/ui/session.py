"""The login session: a signed, time-limited, HttpOnly, SameSite=Strict cookie, and its CSRF token.

The cookie carries the API key the user typed (so every request re-checks it through the
feedback store's `KeyVerifier`: a revoked key stops working within its cache TTL) and a
random CSRF token; it is signed with the server's secret (itsdangerous), so it cannot be
forged or altered, and expires after `SESSION_MAX_AGE_S`. JavaScript never reads it.
Admin forms echo the CSRF token in a hidden field; `check_csrf` compares it in constant time.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass

from itsdangerous import BadSignature, URLSafeTimedSerializer

COOKIE = "llmops_ui"
SESSION_MAX_AGE_S = 12 * 3600
_SALT = "llmops.ui.session"


@dataclass(frozen=True)
class SessionData:
    token: str  # the API key (re-verified on every request)
    csrf: str  # echoed by admin forms


class SessionCodec:
    """Signs and reads session cookies with one server secret."""

    def __init__(self, secret: str, max_age_s: int = SESSION_MAX_AGE_S) -> None:
        if len(secret) < 16:
            raise ValueError("the UI session secret must be at least 16 characters")
        self._s = URLSafeTimedSerializer(secret, salt=_SALT)
        self.max_age_s = max_age_s

    def new(self, token: str) -> tuple[str, SessionData]:
        """A fresh session for `token`: (cookie value, data)."""
        data = SessionData(token=token, csrf=secrets.token_urlsafe(24))
        return self._s.dumps({"k": data.token, "c": data.csrf}), data

    def read(self, cookie: str | None) -> SessionData | None:
        """The session of a cookie, or None when missing, tampered with, expired or malformed."""
        if not cookie:
            return None
        try:
            raw = self._s.loads(cookie, max_age=self.max_age_s)
        except BadSignature:  # includes SignatureExpired
            return None
        if not isinstance(raw, dict) or not isinstance(raw.get("k"), str) or not isinstance(raw.get("c"), str):
            return None
        return SessionData(token=raw["k"], csrf=raw["c"])


def check_csrf(session: SessionData, submitted: str | None) -> bool:
    """Whether a form's CSRF field matches the session's (constant-time)."""
    return bool(submitted) and hmac.compare_digest(session.csrf.encode(), str(submitted).encode())


def safe_next(target: str | None) -> str:
    """A local path to go to after login (never another site: no scheme, no `//host`)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target

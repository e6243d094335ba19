"""Who may generate, and how much: API keys, per-key rate limits, per-request caps.

Generation is the expensive endpoint and every call writes a feedback item, so it is
closed by default: a bearer key of role ``client`` (or ``service``/``admin``) from
``llmops feedback keys create --role client`` is required, verified with the feedback
store's cached `KeyVerifier` before anything reaches the batcher. Each key gets a token
bucket (``rate_per_s`` sustained, ``burst`` at once): past it the answer is 429 with
Retry-After. One request may not ask for more sequences (prompts × n) than one batch
holds, nor more than ``max_tokens_cap`` new tokens: 413. Errors use OpenAI's shape.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

from fastapi import Request

from llmops.feedback.api.call import verify
from llmops.feedback.auth import KeyVerifier
from llmops.feedback.errors import FeedbackError
from llmops.feedback.policies import Action, Principal, allowed
from llmops.serve.errors import ServeError

DEFAULT_RATE_PER_S = 10.0
DEFAULT_BURST = 20
MAX_TRACKED_KEYS = 10_000


class TokenBuckets:
    """One token bucket per key id (LRU-bounded); `take` says how long to wait when empty."""

    def __init__(self, rate_per_s: float, burst: int, clock=time.monotonic) -> None:
        if rate_per_s <= 0 or burst < 1:
            raise ValueError("rate_per_s must be > 0 and burst >= 1")
        self.rate, self.burst, self._clock = rate_per_s, burst, clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # key → (tokens, at)
        self._lock = threading.Lock()

    def take(self, key: str) -> float:
        """0.0 if a request of `key` may go now (a token is spent), else the seconds until one is free."""
        now = self._clock()
        with self._lock:
            tokens, at = self._buckets.pop(key, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - at) * self.rate)
            wait = 0.0
            if tokens >= 1.0:
                tokens -= 1.0
            else:
                wait = (1.0 - tokens) / self.rate
            self._buckets[key] = (tokens, now)
            while len(self._buckets) > MAX_TRACKED_KEYS:
                self._buckets.popitem(last=False)
        return wait


@dataclass
class Access:
    verifier: KeyVerifier
    buckets: TokenBuckets | None
    max_sequences: int  # prompts × n of one request
    max_tokens_cap: int

    async def principal(self, request: Request) -> Principal:
        """401/403/429 in OpenAI's shape, before the request reaches the batcher."""
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise ServeError(401, "missing API key: send Authorization: Bearer llmf_... (a key of role client)",
                             code="invalid_api_key")
        token = token.strip()
        try:
            principal = await verify(self.verifier, token)
        except FeedbackError as exc:
            raise ServeError(401, f"invalid API key: {exc.message}", code="invalid_api_key") from None
        if not allowed(principal, Action.GENERATE):
            raise ServeError(403, f"a key of role {principal.role.value!r} may not generate (use a client key)",
                             code="permission_denied")
        if self.buckets is not None and (wait := self.buckets.take(principal.key_id)) > 0:
            raise ServeError(429, f"rate limit of {self.buckets.rate:g} requests/s per key reached; retry after "
                                  f"{wait:.2f}s", code="rate_limit_exceeded",
                             headers={"Retry-After": str(max(1, math.ceil(wait)))})
        return principal

    def check_size(self, n_prompts: int, n: int, max_tokens: int | None) -> None:
        sequences = n_prompts * n
        if sequences > self.max_sequences:
            raise ServeError(413, f"this request asks for {sequences} sequences ({n_prompts} prompts x n={n}); "
                                  f"at most {self.max_sequences} per request (the batch size)", "n",
                             "request_too_large")
        if max_tokens is not None and max_tokens > self.max_tokens_cap:
            raise ServeError(413, f"max_tokens {max_tokens} is above this server's cap of {self.max_tokens_cap}",
                             "max_tokens", "request_too_large")

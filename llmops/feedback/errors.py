"""Errors of the feedback store: each carries an HTTP status, a stable code and the field at fault.

They are `UserError`s, so the CLI prints them as one line; the API renders them as
``{"error": {"code", "message", "field"}}``.
"""

from __future__ import annotations

from llmops.errors import UserError


class FeedbackError(UserError):
    status = 400
    code = "bad_request"

    def __init__(self, message: str, field: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        if code:
            self.code = code

    def to_dict(self) -> dict:
        err = {"code": self.code, "message": self.message}
        if self.field:
            err["field"] = self.field
        return {"error": err}


class Unauthenticated(FeedbackError):
    status = 401
    code = "unauthenticated"


class Forbidden(FeedbackError):
    status = 403
    code = "forbidden"


class NotFound(FeedbackError):
    status = 404
    code = "not_found"


class Conflict(FeedbackError):
    status = 409
    code = "conflict"


class Invalid(FeedbackError):
    status = 422
    code = "invalid"


class Unavailable(FeedbackError):
    """Nothing was stored (a COMMIT failed, or the server is shutting down): retry after a moment."""

    status = 503
    code = "database_unavailable"
    retry_after_s = 1


class Overloaded(Unavailable):
    """The write queue is full: back-pressure instead of an unbounded backlog."""

    code = "overloaded"


class OutcomeUnknown(Unavailable):
    """The database failed *during* COMMIT: the write may or may not be stored.

    Only a retry with the same ``Idempotency-Key`` tells: it returns the stored answer if
    the first attempt committed, and writes once if it did not.
    """

    code = "outcome_unknown"


class TooManyRequests(FeedbackError):
    """A caller passed its rate limit or its share of the write queue: slow down, others are served."""

    status = 429
    code = "rate_limited"
    retry_after_s = 1

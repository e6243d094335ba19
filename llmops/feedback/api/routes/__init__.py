"""Thin routers: parse, pick the policy action, delegate to `llmops.feedback.store`."""

from llmops.feedback.schemas import ErrorOut

# Documented error answers (OpenAPI): every route may answer these.
ERRORS = {
    400: {"model": ErrorOut, "description": "Malformed JSON"},
    401: {"model": ErrorOut, "description": "Missing, malformed, unknown or revoked API key"},
    403: {"model": ErrorOut, "description": "The key's role may not do this"},
    404: {"model": ErrorOut, "description": "Unknown id"},
    409: {"model": ErrorOut, "description": "Conflicts with stored feedback (duplicate)"},
    413: {"model": ErrorOut, "description": "Body too large"},
    422: {"model": ErrorOut, "description": "Invalid field (named in error.field)"},
    503: {"model": ErrorOut, "description": "Database unavailable; nothing was stored, retry"},
}

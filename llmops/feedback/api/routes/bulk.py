from __future__ import annotations

from collections.abc import Callable
from typing import Any

from llmops.feedback.errors import FeedbackError
from llmops.feedback.schemas import BulkError, BulkOut, BulkResult


def bulk_out(results: list[Any], ok: Callable[[Any, int], BulkResult]) -> BulkOut:
    """Per-element results: the stored ids, or the element's error (status, code, field)."""
    out = []
    for i, r in enumerate(results):
        if isinstance(r, FeedbackError):
            out.append(BulkResult(index=i, status=r.status, error=BulkError(code=r.code, message=r.message, field=r.field)))
        else:
            out.append(ok(r, i))
    n_failed = sum(1 for r in out if r.error is not None)
    return BulkOut(results=out, n_ok=len(out) - n_failed, n_failed=n_failed)

"""Every error leaves the API as ``{"error": {"code", "message", "field"}}`` with a 4xx status
for bad input; only a broken server answers 5xx (503 when the database is unavailable).

Server-side failures answer a generic message with the request id; the cause (exception
type and text, never bound parameters: engines use ``hide_parameters``) is logged under
that id only."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException

from llmops.feedback.api.request_id import request_id
from llmops.feedback.errors import FeedbackError, TooManyRequests, Unavailable

log = logging.getLogger(__name__)


def _error(status: int, code: str, message: str, field: str | None = None, headers=None) -> JSONResponse:
    err = {"code": code, "message": message}
    if field:
        err["field"] = field
    return JSONResponse({"error": err}, status_code=status, headers=headers)


def _field(loc: tuple) -> str:
    parts = [str(p) for p in loc if p not in ("body",)]
    return ".".join(parts) or "body"


async def _feedback_error(_req: Request, exc: FeedbackError) -> JSONResponse:
    headers = None
    if exc.status == 401:
        headers = {"WWW-Authenticate": "Bearer"}
    elif isinstance(exc, (Unavailable, TooManyRequests)):
        headers = {"Retry-After": str(exc.retry_after_s)}
    if exc.status >= 500:
        log.error("request %s: %s (%s)", request_id(), exc.message, type(exc.__cause__).__name__)
        return _error(exc.status, exc.code, f"{exc.message} (request id {request_id()})", exc.field, headers)
    return _error(exc.status, exc.code, exc.message, exc.field, headers)


async def _validation_error(_req: Request, exc: RequestValidationError) -> JSONResponse:
    errors = exc.errors()
    first = errors[0] if errors else {"loc": ("body",), "msg": "invalid request", "type": "invalid"}
    if first.get("type") == "json_invalid":
        return _error(400, "malformed_json", f"request body is not valid JSON: {first.get('msg')}", "body")
    field = _field(tuple(first.get("loc", ())))
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return _error(422, "validation_error", f"{field}: {first.get('msg')}{more}", field)


async def _http_error(_req: Request, exc: HTTPException) -> JSONResponse:
    codes = {404: "not_found", 405: "method_not_allowed", 401: "unauthenticated", 403: "forbidden"}
    return _error(exc.status_code, codes.get(exc.status_code, "http_error"), str(exc.detail), headers=exc.headers)


async def _db_error(_req: Request, exc: DBAPIError) -> JSONResponse:
    # Not the client's fault and nothing was acknowledged: tell it to retry.
    log.error("request %s: database error: %s", request_id(), exc)
    return _error(503, "database_unavailable",
                  f"the database could not complete the request; retry (request id {request_id()})",
                  headers={"Retry-After": "1"})


async def _unexpected(_req: Request, exc: Exception) -> JSONResponse:
    log.exception("request %s: unhandled error", request_id(), exc_info=exc)
    return _error(500, "internal", f"internal server error (request id {request_id()})")


def install(app: FastAPI) -> None:
    app.add_exception_handler(FeedbackError, _feedback_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(DBAPIError, _db_error)
    app.add_exception_handler(Exception, _unexpected)

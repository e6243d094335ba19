"""OpenAI-style errors: ``{"error": {"message", "type", "param", "code"}}``.

Bad input is a 4xx naming the parameter; only a broken server answers 5xx (503 with
Retry-After when it is overloaded or its feedback database is unavailable, in which
case nothing was recorded and the client may retry).
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from llmops.feedback.api.request_id import request_id

log = logging.getLogger(__name__)

_TYPES = {400: "invalid_request_error", 404: "invalid_request_error", 405: "invalid_request_error",
          413: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
          429: "requests", 503: "server_error", 500: "server_error"}


class ServeError(Exception):
    """An answer other than success, with what the client should see."""

    def __init__(self, status: int, message: str, param: str | None = None, code: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.param, self.code = status, message, param, code
        self.headers = headers


def bad_request(message: str, param: str | None = None, code: str | None = None) -> ServeError:
    return ServeError(400, message, param, code)


def error_response(status: int, message: str, param: str | None = None, code: str | None = None,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    body = {"error": {"message": message, "type": _TYPES.get(status, "invalid_request_error"), "param": param,
                      "code": code}}
    return JSONResponse(body, status_code=status, headers=headers)


def _param(loc: tuple) -> str:
    parts = [str(p) for p in loc if p != "body"]
    # pydantic names the union member it tried (e.g. "str", "list[str]"); it means nothing to a client.
    parts = [p for p in parts if not p.startswith(("list[", "str", "function-after", "function-wrap"))]
    return ".".join(parts) or "body"


async def _serve_error(_req: Request, exc: ServeError) -> JSONResponse:
    headers = dict(exc.headers or {})
    if exc.status == 503:
        headers.setdefault("Retry-After", "1")
    if exc.status == 401:
        headers.setdefault("WWW-Authenticate", "Bearer")
    message = exc.message
    if exc.status >= 500:  # the cause is in the log under the request id, never in the answer
        log.error("request %s: %s", request_id(), exc.message)
        message = f"{exc.message} (request id {request_id()})"
    return error_response(exc.status, message, exc.param, exc.code, headers or None)


async def _validation(_req: Request, exc: RequestValidationError) -> JSONResponse:
    errors = exc.errors()
    first = errors[0] if errors else {"loc": ("body",), "msg": "invalid request", "type": "invalid"}
    if first.get("type") == "json_invalid":
        return error_response(400, f"request body is not valid JSON: {first.get('msg')}", "body", "malformed_json")
    param = _param(tuple(first.get("loc", ())))
    message = str(first.get("msg", "invalid value")).removeprefix("Value error, ")
    if first.get("type") == "extra_forbidden":
        message = f"Unrecognized request argument supplied: {param}"
    more = f" (and {len(errors) - 1} more problems)" if len(errors) > 1 else ""
    return error_response(400, f"{param}: {message}{more}", param, first.get("type"))


async def _http(_req: Request, exc: HTTPException) -> JSONResponse:
    return error_response(exc.status_code, str(exc.detail), headers=exc.headers)


async def _unexpected(_req: Request, exc: Exception) -> JSONResponse:
    log.exception("request %s: unhandled error", request_id(), exc_info=exc)
    return error_response(500, f"internal server error (request id {request_id()})")


def install(app: FastAPI) -> None:
    app.add_exception_handler(ServeError, _serve_error)
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(HTTPException, _http)
    app.add_exception_handler(Exception, _unexpected)

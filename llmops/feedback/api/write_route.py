"""A route class for the hottest write endpoints: FastAPI's endpoint, dependency and schema, less its per-request machinery.

Why: at 1,000 ratings/s on one worker the event loop is the resource that runs out.
FastAPI's generic request handling (solving the dependency graph, decoding the JSON, then
validating the decoded object, the exit stack) cost ~0.1 ms a request here beside
~0.2 ms for uvicorn itself (measured with a one-route app, 2026-12-01). For an endpoint of
the shape ``async def endpoint(body: SomeModel, call: Call = Depends(dep)) -> Response``
this handler does the same work directly: pydantic validates the raw bytes in one pass
(`model_validate_json`), the route's own dependency builds the `Call`, the endpoint runs.

Only the ordinary request takes that path: an ``application/json`` body that validates.
Anything else (another or no content type, an empty, malformed or invalid body) goes to
FastAPI's own handler with the body already read, so every error answer is FastAPI's
and the app's, unchanged (`tests/feedback/test_write_route.py` compares both paths).
The route stays an `APIRoute`: same path matching, OpenAPI schema and status code.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import Request, Response
from fastapi.params import Depends
from fastapi.routing import APIRoute
from pydantic import BaseModel, ValidationError


class JSONWriteRoute(APIRoute):
    """`APIRoute` with a direct handler for ``(body: Model, call = Depends(dep)) -> Response`` endpoints."""

    def get_route_handler(self) -> Callable[[Request], Awaitable[Response]]:
        fastapi_handler = super().get_route_handler()
        if self.dependencies:  # route- or router-level dependencies would be skipped on the direct path
            raise TypeError(f"{self.path}: a JSONWriteRoute takes its one dependency from the endpoint's signature")
        endpoint = self.endpoint
        body_name, model, call_name, dependency = _shape(endpoint)

        async def handler(request: Request) -> Response:
            if not _is_json(request.headers.get("content-type")):
                return await fastapi_handler(request)
            raw = await request.body()  # kept on the request: FastAPI's handler reads it again if needed
            try:
                body = model.model_validate_json(raw)
            except ValidationError:
                return await fastapi_handler(request)  # its error answer, word for word
            call = await dependency(request)  # 401/403 raised here, as from FastAPI's dependency
            response = await endpoint(**{body_name: body, call_name: call})
            if not isinstance(response, Response):
                raise TypeError(f"{endpoint.__qualname__} must return a Response on a JSONWriteRoute")
            return response

        return handler


def _is_json(content_type: str | None) -> bool:
    return content_type is not None and content_type.partition(";")[0].strip().lower() == "application/json"


def _shape(endpoint: Callable[..., Any]) -> tuple[str, type[BaseModel], str, Callable[[Request], Awaitable[Any]]]:
    """(body parameter, its model, dependency parameter, the dependency): refuse any other signature."""
    hints = typing.get_type_hints(endpoint)
    body = call = None
    for name, param in inspect.signature(endpoint).parameters.items():
        if isinstance(param.default, Depends) and call is None:
            call = (name, param.default.dependency)
        elif inspect.isclass(hints.get(name)) and issubclass(hints[name], BaseModel) and body is None:
            body = (name, hints[name])
        else:
            body = call = None
            break
    dependency = call[1] if call else None
    if body is None or call is None or not inspect.iscoroutinefunction(endpoint) \
            or not inspect.iscoroutinefunction(dependency) or list(inspect.signature(dependency).parameters) != ["request"]:
        raise TypeError(f"{endpoint.__qualname__}: a JSONWriteRoute endpoint is `async def f(body: Model, "
                        "call = Depends(async_dependency(request)))`")
    return body[0], body[1], call[0], dependency

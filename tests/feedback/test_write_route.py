"""The direct handler of the hot write routes (`JSONWriteRoute`) answers exactly as FastAPI's own would.

Each scenario runs twice on fresh databases: once as served, once with the direct path
switched off (every request through FastAPI's handler). Status, body and the headers
clients act on must be identical, and the ordinary requests must really take the direct path.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi import Request
from fastapi.responses import JSONResponse

from llmops.feedback.schemas import RatingIn

from .helpers import make_keys, new_item

# (name, method path, role or raw Authorization, content type, body bytes, Idempotency-Key)
CASES = [
    ("valid", "/v1/ratings", "rater", "application/json", {"response_id": "R0", "score": 4}, None),
    ("charset param", "/v1/ratings", "rater2", "application/json; charset=utf-8", {"response_id": "R1", "score": 2}, None),
    ("duplicate", "/v1/ratings", "rater", "application/json", {"response_id": "R0", "score": 3}, None),
    ("idempotent first", "/v1/ratings", "rater", "application/json", {"response_id": "R1", "score": 5}, "k-1"),
    ("idempotent replay", "/v1/ratings", "rater", "application/json", {"response_id": "R1", "score": 5}, "k-1"),
    ("idempotent other body", "/v1/ratings", "rater", "application/json", {"response_id": "R1", "score": 1}, "k-1"),
    ("numeric string", "/v1/ratings", "rater2", "application/json", {"response_id": "R0", "score": "3"}, None),
    ("float score", "/v1/ratings", "rater2", "application/json", {"response_id": "R2", "score": 3.0}, None),
    ("off scale", "/v1/ratings", "rater", "application/json", {"response_id": "R2", "score": 9}, None),
    ("unknown response", "/v1/ratings", "rater", "application/json", {"response_id": 999999, "score": 3}, None),
    ("huge id", "/v1/ratings", "rater", "application/json", {"response_id": 10**30, "score": 3}, None),
    ("extra field", "/v1/ratings", "rater", "application/json", {"response_id": "R2", "score": 3, "x": 1}, None),
    ("missing field", "/v1/ratings", "rater", "application/json", {"score": 3}, None),
    ("list body", "/v1/ratings", "rater", "application/json", [], None),
    ("null body", "/v1/ratings", "rater", "application/json", None, None),
    ("malformed json", "/v1/ratings", "rater", "application/json", b'{"response_id": 1,', None),
    ("empty body", "/v1/ratings", "rater", "application/json", b"", None),
    ("lone surrogate", "/v1/ratings", "rater", "application/json",
     b'{"response_id": 1, "score": 3, "critique": "\\ud800"}', None),
    ("not utf-8", "/v1/ratings", "rater", "application/json", b'{"response_id": 1, "score": 3, "critique": "\xff"}', None),
    ("text/plain", "/v1/ratings", "rater", "text/plain", {"response_id": "R2", "score": 3}, None),
    ("no content type", "/v1/ratings", "rater", None, {"response_id": "R2", "score": 3}, None),
    ("no key", "/v1/ratings", "", "application/json", {"response_id": "R2", "score": 3}, None),
    ("fake key", "/v1/ratings", "Bearer llmf_0123456789ab_notarealsecret", "application/json",
     {"response_id": "R2", "score": 3}, None),
    ("fake key, bad body", "/v1/ratings", "Bearer llmf_0123456789ab_notarealsecret", "application/json",
     {"score": 3}, None),
    ("role may not rate", "/v1/ratings", "client", "application/json", {"response_id": "R2", "score": 3}, None),
    ("bad idempotency key", "/v1/ratings", "rater", "application/json", {"response_id": "R2", "score": 3}, "a b"),
    ("bulk", "/v1/ratings/bulk", "rater2", "application/json",
     {"ratings": [{"response_id": "R3", "score": 1}, {"response_id": 999999, "score": 1}]}, None),
    ("comparison", "/v1/comparisons", "rater", "application/json", {"response_ids": ["R0", "R1"], "tie": True}, None),
    ("comparison invalid", "/v1/comparisons", "rater", "application/json", {"response_ids": ["R0"]}, None),
]
HEADERS_COMPARED = ("content-type", "www-authenticate", "idempotent-replayed", "retry-after")


def _body(value, responses: list[int]) -> bytes:
    if isinstance(value, bytes):
        return value

    def resolve(v):
        if isinstance(v, str) and v[:1] == "R" and v[1:].isdigit():
            return responses[int(v[1:])]
        if isinstance(v, dict):
            return {k: resolve(x) for k, x in v.items()}
        if isinstance(v, list):
            return [resolve(x) for x in v]
        return v

    return json.dumps(resolve(value)).encode()


def _run(db_url: str) -> list[tuple]:
    from fastapi.testclient import TestClient

    from llmops.feedback.api import create_app

    keys = make_keys(db_url)
    answers = []
    with TestClient(create_app(db_url), raise_server_exceptions=False, base_url="http://localhost") as client:
        responses = new_item(client, keys, n=4)["response_ids"]
        for name, path, who, ctype, body, idem in CASES:
            headers = {}
            if who.startswith("Bearer "):
                headers["Authorization"] = who
            elif who:
                headers.update(keys.headers(who))
            if ctype:
                headers["Content-Type"] = ctype
            if idem:
                headers["Idempotency-Key"] = idem
            r = client.post(path, content=_body(body, responses), headers=headers)
            answer = r.json()
            answer = {**answer, "id": "<id>"} if isinstance(answer, dict) and "id" in answer else answer
            answers.append((name, r.status_code, answer, {h: r.headers.get(h) for h in HEADERS_COMPARED}))
    return answers


def test_direct_path_answers_as_fastapi_does(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from llmops.feedback.api import write_route

    taken = []
    validate = RatingIn.model_validate_json
    monkeypatch.setattr(RatingIn, "model_validate_json", lambda raw: (taken.append(1), validate(raw))[1])
    direct = _run(f"sqlite:///{tmp_path / 'direct.db'}")
    assert len(taken) >= 10  # the ordinary ratings went the direct way
    monkeypatch.setattr(write_route, "_is_json", lambda content_type: False)  # everything through FastAPI
    taken.clear()
    reference = _run(f"sqlite:///{tmp_path / 'fastapi.db'}")
    assert not taken
    for got, want in zip(direct, reference):
        assert got == want, got[0]
    statuses = {name: status for name, status, _, _ in direct}
    assert statuses["valid"] == 201 and statuses["idempotent replay"] == 201 and statuses["duplicate"] == 409
    assert statuses["malformed json"] == 400 and statuses["empty body"] == 422 and statuses["no key"] == 401
    assert statuses["fake key, bad body"] == 401 and statuses["role may not rate"] == 403


def test_only_the_endpoint_shape_it_serves_is_accepted() -> None:
    from fastapi import APIRouter, Depends

    from llmops.feedback.api.write_route import JSONWriteRoute

    async def dep(request: Request) -> str:
        return "call"

    router = APIRouter(route_class=JSONWriteRoute)

    async def ok(body: RatingIn, call: str = Depends(dep)) -> JSONResponse:
        return JSONResponse({})

    router.add_api_route("/ok", ok, methods=["POST"])

    async def query_too(body: RatingIn, page: int, call: str = Depends(dep)) -> JSONResponse:
        return JSONResponse({})

    def not_async(body: RatingIn, call: str = Depends(dep)) -> JSONResponse:
        return JSONResponse({})

    for endpoint in (query_too, not_async):
        with pytest.raises(TypeError, match="JSONWriteRoute"):
            router.add_api_route("/bad", endpoint, methods=["POST"])
    with pytest.raises(TypeError, match="dependency"):
        APIRouter(route_class=JSONWriteRoute, dependencies=[Depends(dep)]).add_api_route("/x", ok, methods=["POST"])

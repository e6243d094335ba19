"""Serving is closed by default: role × endpoint matrix, Host check, rate limits, request caps, admin API."""

from __future__ import annotations

import httpx
import pytest

from .helpers import client_key

GENERATE = {("POST", "/v1/completions"), ("POST", "/v1/chat/completions")}
# Written out independently of llmops.feedback.policies: who may call what on the serving port.
SERVE_MATRIX = {
    ("POST", "/v1/completions"): {"client", "service", "admin"},
    ("POST", "/v1/chat/completions"): {"client", "service", "admin"},
    ("GET", "/v1/items"): {"rater", "service", "admin"},
    ("POST", "/v1/ratings"): {"rater", "service", "admin"},
}
PUBLIC = {("GET", "/healthz"), ("GET", "/readyz"), ("GET", "/metrics"), ("GET", "/v1/models"), ("GET", "/"),
          ("GET", "/openapi.json"), ("GET", "/docs"), ("GET", "/docs/oauth2-redirect"), ("GET", "/redoc")}


@pytest.fixture(scope="module")
def small_server(tmp_path_factory):
    """A second server with a tight rate limit and the admin API off (the default)."""
    from llmops.serve.app import create_app
    from llmops.serve.server import ServerThread

    tmp = tmp_path_factory.mktemp("serve-access")
    db = f"sqlite:///{tmp / 'llmops.db'}"
    app = create_app("builtin:tiny", db_url=db, max_batch_size=4, max_wait_ms=0, torch_threads=1, migrate=True,
                     rate_limit_per_s=0.5, rate_burst=2, max_tokens_cap=64)
    keys = {role: client_key(db, f"{role}-1", role) for role in ("client", "rater", "service", "admin")}
    with ServerThread(app) as srv, httpx.Client(base_url=srv.url, timeout=120) as c:
        yield c, keys, app


def _auth(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def test_generation_role_matrix_and_bad_keys(served) -> None:
    from llmops.feedback.auth import create_key  # noqa: F401 - the keys below are real ones
    c = served.client
    keys = {role: client_key(served.db_url, f"matrix-{role}", role) for role in ("client", "rater", "service", "admin")}
    item = c.post("/v1/completions", json={"prompt": "Hi", "max_tokens": 2, "temperature": 0}).json()
    rid = item["llmops"]["response_ids"][0]
    bodies = {"/v1/completions": {"prompt": "Hi", "max_tokens": 2, "temperature": 0},
              "/v1/chat/completions": {"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 2},
              "/v1/ratings": {"response_id": rid, "score": 3}}
    for (method, path), allowed in SERVE_MATRIX.items():
        for role, token in keys.items():
            r = c.request(method, path, json=bodies.get(path), headers=_auth(token))
            if role in allowed:
                assert r.status_code in (200, 201, 409), (path, role, r.text)  # 409: the role rated already
            else:
                assert r.status_code == 403, (path, role, r.status_code, r.text)
    for path in ("/v1/completions", "/v1/chat/completions"):
        for headers in ({"Authorization": ""}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic YTpi"},
                        _auth("llmf_000000000000_secret"), _auth(keys["client"][:-2] + "xx")):
            r = c.post(path, json=bodies[path], headers=headers)
            assert r.status_code == 401, (path, headers, r.text)
            err = r.json()["error"]
            assert err["type"] == "authentication_error" and err["code"] == "invalid_api_key"
            assert r.headers.get("www-authenticate") == "Bearer"


def test_every_serving_route_is_closed_or_listed(served) -> None:
    spec = served.client.get("/openapi.json").json()
    routes = {(m.upper(), p) for p, ops in spec["paths"].items() for m in ops}
    assert GENERATE <= routes and not (routes - GENERATE - PUBLIC), routes - GENERATE - PUBLIC
    r = served.client.post("/v1/completions", json={"prompt": "x"}, headers={"Authorization": ""})
    assert r.status_code == 401


def test_key_management_and_export_are_not_on_the_inference_port(small_server) -> None:
    c, keys, _app = small_server
    for method, path in (("POST", "/v1/keys"), ("GET", "/v1/keys"), ("GET", "/v1/export/preferences"),
                         ("POST", "/v1/exports")):
        r = c.request(method, path, json={"role": "admin"} if method == "POST" else None, headers=_auth(keys["admin"]))
        assert r.status_code in (404, 405), (path, r.status_code)


def test_host_header_must_be_a_loopback_name(small_server) -> None:
    """DNS rebinding: a page on attacker.example resolving to 127.0.0.1 sends its own Host."""
    c, keys, _app = small_server
    r = c.post("/v1/completions", json={"prompt": "x", "max_tokens": 1}, headers={**_auth(keys["client"]),
                                                                                   "Host": "attacker.example"})
    assert r.status_code == 400
    assert c.get("/healthz", headers={"Host": "localhost"}).status_code == 200
    # every loopback name, with and without a port (an IPv6 literal is bracketed: `[::1]:8080`)
    for host in ("localhost:8080", "127.0.0.1:8080", "[::1]", "[::1]:8080"):
        assert c.get("/healthz", headers={"Host": host}).status_code == 200, host
    for host in ("attacker.example:8080", "[::2]:8080", "127.0.0.1.attacker.example", "localhost.attacker.example"):
        assert c.get("/healthz", headers={"Host": host}).status_code == 400, host


def test_rate_limit_and_request_caps_answer_in_openai_shape(small_server) -> None:
    c, keys, _app = small_server
    too_many = c.post("/v1/completions", json={"prompt": ["a", "b"], "n": 3, "max_tokens": 1},
                      headers=_auth(keys["service"]))
    assert too_many.status_code == 413
    assert too_many.json()["error"] == {"message": too_many.json()["error"]["message"], "type": "invalid_request_error",
                                        "param": "n", "code": "request_too_large"}
    assert "6 sequences" in too_many.json()["error"]["message"]
    long = c.post("/v1/completions", json={"prompt": "a", "max_tokens": 65}, headers=_auth(keys["service"]))
    assert long.status_code == 413 and long.json()["error"]["param"] == "max_tokens"
    body = {"prompt": "a", "max_tokens": 1, "temperature": 0}
    statuses = [c.post("/v1/completions", json=body, headers=_auth(keys["client"])).status_code for _ in range(4)]
    assert statuses[:2] == [200, 200] and 429 in statuses[2:]  # burst 2, then 0.5/s
    r = c.post("/v1/completions", json=body, headers=_auth(keys["client"]))
    assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
    assert r.json()["error"]["code"] == "rate_limit_exceeded" and r.json()["error"]["type"] == "requests"
    # another key has its own bucket
    assert c.post("/v1/completions", json=body, headers=_auth(keys["admin"])).status_code == 200
    assert r.headers.get("x-request-id")


def test_token_buckets_refill_at_the_rate() -> None:
    from llmops.serve.access import TokenBuckets

    now = [0.0]
    b = TokenBuckets(2.0, 3, clock=lambda: now[0])
    assert [b.take("k") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert b.take("k") == pytest.approx(0.5)
    now[0] += 0.5
    assert b.take("k") == 0.0 and b.take("other") == 0.0

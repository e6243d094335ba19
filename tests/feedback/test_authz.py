"""Every role × every endpoint, plus anonymous, malformed, unknown and revoked keys.

The expected table is written out here independently of `llmops.feedback.policies`,
and every API route must appear in it: a new endpoint cannot ship unlisted.
"""

from __future__ import annotations

import pytest

from .helpers import new_item

PUBLIC = {("GET", "/healthz"), ("GET", "/readyz"), ("GET", "/metrics"), ("GET", "/"), ("GET", "/openapi.json"), ("GET", "/docs"),
          ("GET", "/docs/oauth2-redirect"), ("GET", "/redoc")}
ALL, WRITERS, ADMIN = {"admin", "service", "rater"}, {"admin", "service"}, {"admin"}
# (method, path template) → roles allowed; `client` keys (model-server callers) get none of them
EXPECTED = {
    ("GET", "/v1/items"): ALL,
    ("GET", "/v1/items/next"): ALL,
    ("GET", "/v1/items/{item_id}"): ALL,
    ("POST", "/v1/items"): WRITERS,
    ("POST", "/v1/items/bulk"): WRITERS,
    ("POST", "/v1/ratings"): ALL,
    ("POST", "/v1/ratings/bulk"): ALL,
    ("POST", "/v1/comparisons"): ALL,
    ("GET", "/v1/export/preferences"): ADMIN,
    ("POST", "/v1/exports"): ADMIN,
    ("GET", "/v1/exports/{snapshot_id}"): ADMIN,
    ("GET", "/v1/exports/{snapshot_id}/rows"): ADMIN,
    ("GET", "/v1/exports/{snapshot_id}/file"): ADMIN,
    ("POST", "/v1/keys"): ADMIN,
    ("GET", "/v1/keys"): ADMIN,
    ("DELETE", "/v1/keys/{key_id}"): ADMIN,
    ("POST", "/v1/projects"): ADMIN,
    ("GET", "/v1/projects"): ALL,
    ("GET", "/v1/projects/{project}"): ALL,
    ("PATCH", "/v1/projects/{project}"): ADMIN,
    ("POST", "/v1/projects/{project}/items"): WRITERS,
    ("PUT", "/v1/projects/{project}/items/{item_id}/gold"): ADMIN,
    ("DELETE", "/v1/projects/{project}/items/{item_id}/gold"): ADMIN,
    ("POST", "/v1/projects/{project}/next"): ALL,
    ("POST", "/v1/projects/{project}/items/{item_id}/skip"): ALL,
    ("POST", "/v1/projects/{project}/items/{item_id}/answer"): ALL,
    ("POST", "/v1/projects/{project}/answers"): ALL,
    ("GET", "/v1/projects/{project}/progress"): ALL,
    ("GET", "/v1/projects/{project}/guidelines"): ALL,
    ("GET", "/v1/projects/{project}/quality"): ADMIN,
    ("POST", "/v1/corrections"): ALL,
}
# Every item the matrix creates is routed into this project (rules that match everything).
MATRIX_PROJECT = {"name": "matrix", "overlap_k": 5, "routing": {},
                  "questions": [{"type": "rating", "name": "q"}, {"type": "preference", "name": "p", "required": False}]}


def test_every_route_is_in_the_matrix(client):
    spec = client.get("/openapi.json").json()
    routes = {(m.upper(), path) for path, ops in spec["paths"].items() for m in ops}
    routes = {r for r in routes if r not in PUBLIC}
    assert routes == set(EXPECTED), routes ^ set(EXPECTED)


def _request(client, keys, method, path, headers, item):
    a, b = item["response_ids"]
    path = path.replace("{item_id}", str(item["item_id"])).replace("{key_id}", keys.rater2.split("_")[1])
    path = path.replace("{project}", "matrix")
    if "{snapshot_id}" in path:
        made = client.post("/v1/exports", json={}, headers=keys.headers("admin"))
        path = path.replace("{snapshot_id}", made.json()["snapshot_id"])
    bodies = {
        "/v1/items": {"prompt": "p", "responses": [{"text": "r"}]},
        "/v1/items/bulk": {"items": [{"prompt": "p", "responses": [{"text": "r"}]}]},
        "/v1/ratings": {"response_id": a, "score": 3},
        "/v1/ratings/bulk": {"ratings": [{"response_id": b, "score": 3}]},
        "/v1/comparisons": {"item_id": item["item_id"], "chosen": a, "rejected": b},
        "/v1/keys": {"role": "rater"},
        "/v1/exports": {},
        "/v1/projects": {**MATRIX_PROJECT, "name": "made-by-admin"},
        "/v1/projects/matrix": {"guidelines": "Be *kind*."},
        "/v1/projects/matrix/items": {"item_ids": [item["item_id"]]},
        f"/v1/projects/matrix/items/{item['item_id']}/gold": {"ratings": {str(a): 3}},
        f"/v1/projects/matrix/items/{item['item_id']}/answer": {"ratings": [{"response_id": a, "score": 4}]},
        "/v1/projects/matrix/answers": {"answers": [{"item_id": item["item_id"], "ratings": [{"response_id": b, "score": 2}]}]},
        "/v1/corrections": {"response_id": a, "text": "a better answer"},
    }
    return client.request(method, path, json=bodies.get(path) if method in ("POST", "PUT", "PATCH") else None,
                          headers=headers)


def test_role_matrix(client, keys):
    """One test per backend (not per cell): the cells share a database to stay fast."""
    bad_credentials = ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic YTpi"},
                       {"Authorization": "Bearer llmf_000000000000_secret"},
                       {"Authorization": f"Bearer {keys.admin[:-2]}xx"})  # right id, wrong secret
    made = client.post("/v1/projects", json=MATRIX_PROJECT, headers=keys.headers("admin"))
    assert made.status_code == 201, made.text
    for endpoint in sorted(EXPECTED, key=lambda e: e[0] == "DELETE"):  # revoke last
        method, path = endpoint
        item = new_item(client, keys, n=2)
        for role in ("client", "rater", "service", "admin"):
            r = _request(client, keys, method, path, keys.headers(role), item)
            if role in EXPECTED[endpoint]:
                assert r.status_code in (200, 201), (endpoint, role, r.text)
            else:
                assert r.status_code == 403, (endpoint, role, r.status_code, r.text)
                assert r.json()["error"]["code"] == "forbidden"
        for headers in bad_credentials:
            r = _request(client, keys, method, path, headers, item)
            assert r.status_code == 401, (endpoint, headers, r.status_code, r.text)
            assert r.headers.get("www-authenticate") == "Bearer"


def test_revoked_key_is_refused_at_once(client, keys):
    h = keys.headers("rater2")
    assert client.get("/v1/items", headers=h).status_code == 200
    key_id = keys.rater2.split("_")[1]
    r = client.delete(f"/v1/keys/{key_id}", headers=keys.headers("admin"))
    assert r.status_code == 200 and r.json()["revoked_at"]
    r = client.get("/v1/items", headers=h)
    assert r.status_code == 401 and "revoked" in r.json()["error"]["message"]


def test_keys_api_shows_secret_once_and_stores_only_a_hash(client, keys, db_url):
    from sqlalchemy import select

    from llmops.db import session_factory
    from llmops.feedback.tables import ApiKey

    made = client.post("/v1/keys", json={"role": "service", "name": "svc-2"}, headers=keys.headers("admin")).json()
    token = made["key"]
    assert token.startswith("llmf_") and made["role"] == "service"
    assert client.post("/v1/items", json={"prompt": "p", "responses": [{"text": "t"}]},
                       headers={"Authorization": f"Bearer {token}"}).status_code == 201
    listed = client.get("/v1/keys", headers=keys.headers("admin")).json()
    assert all(k["key"] is None for k in listed) and made["key_id"] in {k["key_id"] for k in listed}
    with session_factory(db_url)() as s:
        stored = s.scalar(select(ApiKey).where(ApiKey.key_id == made["key_id"]))
    secret = token.split("_")[2]
    assert secret not in stored.secret_sha256 and len(stored.secret_sha256) == 64


def test_no_secret_is_ever_stored(client, keys, db_url, tmp_path):
    """Keys created over HTTP (with and without Idempotency-Key, and a replay) leave no secret anywhere:
    not in any column of any table, not in the database file or its WAL."""
    from sqlalchemy import inspect, select, text

    from llmops.db import get_engine

    admin = keys.headers("admin")
    first = client.post("/v1/keys", json={"role": "rater", "name": "carol"}, headers={**admin, "Idempotency-Key": "k-1"})
    replay = client.post("/v1/keys", json={"role": "rater", "name": "carol"}, headers={**admin, "Idempotency-Key": "k-1"})
    plain = client.post("/v1/keys", json={"role": "client"}, headers=admin)
    assert first.status_code == plain.status_code == 201 and first.json()["key"].startswith("llmf_")
    assert replay.headers.get("idempotent-replayed") == "true" and replay.json()["key"] is None
    assert replay.json()["key_id"] == first.json()["key_id"]  # same key, not a second one
    tokens = [first.json()["key"], plain.json()["key"]]
    needles = [t for token in tokens for t in (token, token.split("_")[2])]
    engine = get_engine(db_url)
    with engine.connect() as conn:
        for table in inspect(engine).get_table_names():
            for row in conn.execute(text(f'SELECT * FROM "{table}"')):
                cells = " ".join(str(v) for v in row)
                assert not any(n in cells for n in needles), table
    if db_url.startswith("sqlite"):
        path = db_url.split("///", 1)[1]
        import os

        for f in (path, path + "-wal"):
            if os.path.exists(f):
                data = open(f, "rb").read()
                assert not any(n.encode() in data for n in needles), f

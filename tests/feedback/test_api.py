"""The HTTP API on SQLite and PostgreSQL: writes, reads, errors, idempotency, limits."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from llmops.db import session_factory
from llmops.feedback.tables import Comparison, Item, Rating, Response
from llmops.feedback.schemas import MAX_BODY_BYTES, MAX_PAGE_LIMIT
from .helpers import new_item


def count(db_url, model) -> int:
    with session_factory(db_url)() as s:
        return s.scalar(select(func.count()).select_from(model))


def test_item_rating_comparison_roundtrip(client, keys, db_url):
    created = new_item(client, keys, n=3, context="ctx", metadata={"lang": "en"}, scale_min=0, scale_max=10)
    assert len(created["response_ids"]) == 3
    a, b, c = created["response_ids"]
    got = client.get(f"/v1/items/{created['item_id']}", headers=keys.headers("service")).json()
    assert [r["id"] for r in got["responses"]] == [a, b, c]
    assert (got["context"], got["metadata"], got["scale_max"]) == ("ctx", {"lang": "en"}, 10)
    assert got["responses"][1]["model"] == "m1"

    r = client.post("/v1/ratings", json={"response_id": a, "score": 10, "critique": "great"}, headers=keys.headers("rater"))
    assert r.status_code == 201 and r.json()["id"] >= 1
    for body in ({"item_id": created["item_id"], "ranking": [c, a, b]},
                 {"item_id": created["item_id"], "chosen": a, "rejected": b},
                 {"item_id": created["item_id"], "tie": [b, c]}):
        r = client.post("/v1/comparisons", json=body, headers=keys.headers("rater2" if "ranking" in body else "rater"))
        assert r.status_code == 201, r.text
    assert count(db_url, Rating) == 1 and count(db_url, Comparison) == 3
    with session_factory(db_url)() as s:
        rating = s.scalar(select(Rating))
        assert (rating.score, rating.critique, rating.item_id) == (10, "great", created["item_id"])


@pytest.mark.parametrize(
    "body, status, code, field",
    [
        ({"response_id": 1, "score": 6}, 422, "out_of_scale", "score"),
        ({"response_id": 1, "score": 0}, 422, "out_of_scale", "score"),
        ({"response_id": 999_999, "score": 3}, 404, "not_found", "response_id"),
        ({"response_id": 1, "score": "three"}, 422, "validation_error", "score"),
        ({"response_id": 1, "score": 3.5}, 422, "validation_error", "score"),
        ({"response_id": 1}, 422, "validation_error", "score"),
        ({"response_id": 1, "score": 3, "extra": 1}, 422, "validation_error", "extra"),
        ({"response_id": 2**70, "score": 3}, 422, "validation_error", "response_id"),
        ([1, 2], 422, "validation_error", "body"),
    ],
)
def test_bad_ratings_are_4xx_naming_the_field(client, keys, db_url, body, status, code, field):
    new_item(client, keys)
    r = client.post("/v1/ratings", json=body, headers=keys.headers("rater"))
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert err["code"] == code and err.get("field", "body") == field and err["message"]
    assert count(db_url, Rating) == 0


def test_malformed_json_and_oversized_body(client, keys):
    h = {**keys.headers("rater"), "content-type": "application/json"}
    r = client.post("/v1/ratings", content=b'{"response_id": 1, "score": ', headers=h)
    assert r.status_code == 400 and r.json()["error"]["code"] == "malformed_json"
    big = b'{"response_id": 1, "score": 3, "critique": "' + b"x" * MAX_BODY_BYTES + b'"}'
    r = client.post("/v1/ratings", content=big, headers=h)
    assert r.status_code == 413 and r.json()["error"]["code"] == "body_too_large"

    def chunks():  # chunked upload: no Content-Length, counted as it streams
        yield b'{"critique": "'
        for _ in range(20):
            yield b"y" * (MAX_BODY_BYTES // 10)
        yield b'"}'

    r = client.post("/v1/ratings", content=chunks(), headers=h)
    assert r.status_code == 413


def test_duplicate_rating_is_409_and_one_row(client, keys, db_url):
    rid = new_item(client, keys)["response_ids"][0]
    ok = client.post("/v1/ratings", json={"response_id": rid, "score": 3}, headers=keys.headers("rater"))
    dup = client.post("/v1/ratings", json={"response_id": rid, "score": 4}, headers=keys.headers("rater"))
    other = client.post("/v1/ratings", json={"response_id": rid, "score": 4}, headers=keys.headers("rater2"))
    assert (ok.status_code, dup.status_code, other.status_code) == (201, 409, 201)
    assert dup.json()["error"]["code"] == "duplicate_rating"
    assert count(db_url, Rating) == 2


def test_comparison_errors(client, keys):
    item = new_item(client, keys, n=3)
    other = new_item(client, keys)
    iid, (a, b, c) = item["item_id"], item["response_ids"]
    cases = [
        ({"item_id": iid, "chosen": a}, 422),  # rejected missing
        ({"item_id": iid, "chosen": a, "rejected": a}, 422),  # same response twice
        ({"item_id": iid, "ranking": [a, b], "tie": [a, b]}, 422),  # two forms
        ({"item_id": iid, "ranking": [a]}, 422),
        ({"item_id": iid, "chosen": a, "rejected": other["response_ids"][0]}, 404),  # another item's response
        ({"item_id": 999_999, "chosen": a, "rejected": b}, 404),
    ]
    for body, status in cases:
        r = client.post("/v1/comparisons", json=body, headers=keys.headers("rater"))
        assert r.status_code == status, (body, r.text)
        assert r.json()["error"]["message"]
    first = client.post("/v1/comparisons", json={"item_id": iid, "chosen": a, "rejected": b}, headers=keys.headers("rater"))
    again = client.post("/v1/comparisons", json={"item_id": iid, "chosen": b, "rejected": a}, headers=keys.headers("rater"))
    assert (first.status_code, again.status_code) == (201, 409)


def test_idempotent_retries_store_one_row(client, keys, db_url):
    rid = new_item(client, keys)["response_ids"][0]
    h = {**keys.headers("rater"), "Idempotency-Key": "retry-1"}
    answers = [client.post("/v1/ratings", json={"response_id": rid, "score": 4}, headers=h) for _ in range(3)]
    assert [a.status_code for a in answers] == [201, 201, 201]
    assert len({a.json()["id"] for a in answers}) == 1
    assert answers[1].headers.get("Idempotent-Replayed") == "true"
    assert count(db_url, Rating) == 1
    # Same key, different body: refused, nothing stored.
    r = client.post("/v1/ratings", json={"response_id": rid, "score": 5}, headers=h)
    assert r.status_code == 422 and r.json()["error"]["code"] == "idempotency_key_reused"
    # Keys are per rater: another rater's identical key is a different request.
    r = client.post("/v1/ratings", json={"response_id": rid, "score": 4}, headers={**keys.headers("rater2"), "Idempotency-Key": "retry-1"})
    assert r.status_code == 201
    assert count(db_url, Rating) == 2
    # Items too: a retried create stores the item once.
    hi = {**keys.headers("service"), "Idempotency-Key": "item-1"}
    body = {"prompt": "p", "responses": [{"text": "x"}]}
    ids = {client.post("/v1/items", json=body, headers=hi).json()["item_id"] for _ in range(3)}
    assert len(ids) == 1 and count(db_url, Item) == 2


def test_bulk_results_per_element(client, keys, db_url):
    rids = new_item(client, keys, n=2)["response_ids"]
    body = {"ratings": [
        {"response_id": rids[0], "score": 5},
        {"response_id": rids[1], "score": 9},
        {"response_id": 424242, "score": 1},
        {"response_id": rids[0], "score": 2},
    ]}
    r = client.post("/v1/ratings/bulk", json=body, headers=keys.headers("rater"))
    assert r.status_code == 200, r.text
    out = r.json()
    assert [x["status"] for x in out["results"]] == [201, 422, 404, 409]
    assert out["results"][1]["error"]["field"] == "score"
    assert (out["n_ok"], out["n_failed"]) == (1, 3)
    assert count(db_url, Rating) == 1
    items = {"items": [{"prompt": f"p{i}", "responses": [{"text": "a"}, {"text": "b"}]} for i in range(3)]}
    r = client.post("/v1/items/bulk", json=items, headers=keys.headers("service"))
    assert r.status_code == 200 and r.json()["n_ok"] == 3
    assert count(db_url, Response) == 2 + 6


def test_keyset_pagination_and_next_item(client, keys):
    made = [new_item(client, keys)["item_id"] for _ in range(5)]
    seen, cursor = [], None
    while True:
        params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = client.get("/v1/items", params=params, headers=keys.headers("rater")).json()
        seen += [i["id"] for i in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == made
    for bad in ({"cursor": "!!"}, {"limit": MAX_PAGE_LIMIT + 1}, {"limit": 0}):
        assert client.get("/v1/items", params=bad, headers=keys.headers("rater")).status_code == 422
    assert client.get("/v1/items/999999", headers=keys.headers("rater")).status_code == 404

    first = client.get("/v1/items/next", headers=keys.headers("rater")).json()
    assert first["id"] == made[0]
    for resp in first["responses"]:
        client.post("/v1/ratings", json={"response_id": resp["id"], "score": 3}, headers=keys.headers("rater"))
    assert client.get("/v1/items/next", headers=keys.headers("rater")).json()["id"] == made[1]
    assert client.get("/v1/items/next", headers=keys.headers("rater2")).json()["id"] == made[0]
    # a comparison-only answer counts too: the rater moves on instead of seeing the item again
    second = client.get(f"/v1/items/{made[1]}", headers=keys.headers("rater")).json()["responses"]
    body = {"item_id": made[1], "chosen": second[0]["id"], "rejected": second[1]["id"]}
    assert client.post("/v1/comparisons", json=body, headers=keys.headers("rater")).status_code == 201
    assert client.get("/v1/items/next", headers=keys.headers("rater")).json()["id"] == made[2]


def test_health_metrics_openapi(client, keys):
    rid = new_item(client, keys)["response_ids"][0]
    client.post("/v1/ratings", json={"response_id": rid, "score": 3}, headers=keys.headers("rater"))
    assert client.get("/healthz").json() == {"status": "ok"}
    text = client.get("/metrics").text
    assert 'llmops_feedback_writes_total{kind="rating"}' in text
    assert 'route="/v1/ratings"' in text
    client.request("BREW", "/v1/ratings")  # a made-up method gets no series of its own
    text = client.get("/metrics").text
    assert 'method="BREW"' not in text and 'method="OTHER",route="/v1/ratings",status="405"' in text
    spec = client.get("/openapi.json").json()
    assert {"/v1/items", "/v1/ratings", "/v1/comparisons", "/v1/ratings/bulk", "/v1/export/preferences"} <= set(spec["paths"])
    assert "/bench/noop" not in spec["paths"]
    assert client.post("/bench/noop", json={}).status_code in (404, 405)


def test_database_rejects_what_the_api_would(db_url, keys):
    """Constraints hold for writers that bypass the API."""
    from sqlalchemy.exc import IntegrityError

    from llmops.feedback.store import FeedbackStore

    store = FeedbackStore(db_url)
    item = store.create_item("p", [{"text": "a"}, {"text": "b"}])
    other = store.create_item("q", [{"text": "c"}])
    rater = store.rater("carol")
    base = {"response_id": item.response_ids[0], "item_id": item.item_id, "scale_min": 1, "scale_max": 5, "rater_id": rater}
    bad_rows = [
        {**base, "score": 9},  # off the scale
        {**base, "score": 3, "scale_max": 10},  # scale not the item's
        {**base, "score": 3, "item_id": other.item_id},  # response of another item
    ]
    for row in bad_rows:
        with pytest.raises(IntegrityError), store.transaction() as s:
            s.add(Rating(**row))
    with store.transaction() as s:
        s.add(Rating(**base, score=3))
    with pytest.raises(IntegrityError), store.transaction() as s:
        s.add(Rating(**base, score=4))  # second rating by the same rater
    assert count(db_url, Rating) == 1


def test_raters_get_a_blind_redacted_per_rater_shuffled_view(client, keys):
    """Raters see prompt, context and texts only, in an order of their own; services see everything."""
    item = new_item(client, keys, n=8, context="ctx", metadata={"user": "end-user-7", "system": "secret prompt"})
    full = client.get(f"/v1/items/{item['item_id']}", headers=keys.headers("admin")).json()
    assert full["metadata"]["user"] == "end-user-7" and full["responses"][0]["model"] == "m0"
    views = {}
    for rater in ("rater", "rater2"):
        got = client.get(f"/v1/items/{item['item_id']}", headers=keys.headers(rater)).json()
        assert got["metadata"] is None and got["context"] == "ctx"
        assert all(r["model"] is None and r["model_version"] is None and r["generation_params"] is None
                   for r in got["responses"])
        assert [r["position"] for r in got["responses"]] == list(range(8))  # display order, not storage order
        assert sorted(r["id"] for r in got["responses"]) == item["response_ids"]
        again = client.get(f"/v1/items/{item['item_id']}", headers=keys.headers(rater)).json()
        assert again == got  # stable for one rater across reloads
        listed = client.get("/v1/items", headers=keys.headers(rater)).json()["items"][-1]
        nxt = client.get("/v1/items/next", headers=keys.headers(rater)).json()
        assert listed == got and nxt == got
        views[rater] = [r["id"] for r in got["responses"]]
    assert views["rater"] != views["rater2"]  # each rater gets an order of its own (8! orders)
    assert views["rater"] != item["response_ids"] or views["rater2"] != item["response_ids"]


def test_full_rater_view_is_a_project_choice(db_url, keys):
    from fastapi.testclient import TestClient

    from llmops.feedback.api import create_app

    with TestClient(create_app(db_url, rater_view="full"), base_url="http://localhost") as c:
        item = new_item(c, keys, n=2, metadata={"user": "u"})
        got = c.get(f"/v1/items/{item['item_id']}", headers=keys.headers("rater")).json()
        assert got["metadata"] == {"user": "u"} and [r["model"] for r in got["responses"]] == ["m0", "m1"]

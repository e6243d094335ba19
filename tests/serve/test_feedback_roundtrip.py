"""Serve → rate → export over real HTTP: the exported preference pair holds the served text."""

from __future__ import annotations

import json

from .helpers import Served, rater_key


def test_serve_rate_compare_export_round_trip(served: Served, tmp_path) -> None:
    from llmops.feedback.export import export_preferences
    from llmops.feedback.queries import quality_by_model

    c = served.client
    r = c.post("/v1/chat/completions", json={
        "messages": [{"role": "user", "content": "Return a new list sorted by key."}],
        "max_tokens": 16, "temperature": 1.0, "n": 2, "seed": 3,
    })
    assert r.status_code == 200, r.text
    out = r.json()
    item_id = out["llmops"]["item_id"]
    (a, b) = [(ch["response_id"], ch["message"]["content"]) for ch in out["choices"]]
    assert a[1] != b[1], "two samples at temperature 1 should differ"

    # Raters use the feedback API on the same port, with their own keys.
    alice = {"Authorization": f"Bearer {rater_key(served.db_url, 'alice')}"}
    bob = {"Authorization": f"Bearer {rater_key(served.db_url, 'bob')}"}
    assert c.post("/v1/ratings", json={"response_id": a[0], "score": 5}, headers=alice).status_code == 201
    assert c.post("/v1/ratings", json={"response_id": b[0], "score": 2}, headers=alice).status_code == 201
    r = c.post("/v1/comparisons", json={"item_id": item_id, "chosen": a[0], "rejected": b[0]}, headers=bob)
    assert r.status_code == 201, r.text
    # the feedback API keeps its own contract (auth, error format) under the shared port
    denied = c.post("/v1/ratings", json={"response_id": a[0], "score": 5}, headers={"Authorization": "Bearer nope"})
    assert denied.status_code == 401 and denied.json()["error"]["code"] == "unauthenticated"
    shown = c.get(f"/v1/items/{item_id}", headers=alice).json()["responses"]
    assert {r["text"] for r in shown} == {a[1], b[1]} and all(r["model"] is None for r in shown)  # blind view

    result = export_preferences(served.db_url, tmp_path / "prefs.jsonl")
    rows = [json.loads(line) for line in (tmp_path / "prefs.jsonl").read_text().splitlines()]
    [row] = [r for r in rows if r["item_id"] == item_id]
    assert (row["chosen"], row["rejected"]) == (a[1], b[1])
    assert row["prompt"] == "Return a new list sorted by key."
    assert result.n_rows == len(rows) >= 1

    [quality] = [q for q in quality_by_model(served.db_url) if q["model"] == "builtin:tiny"]
    assert quality["n_ratings"] >= 2

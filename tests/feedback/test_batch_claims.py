"""Batch claims (`POST /v1/projects/{p}/next?count=N`) and batch answers (`POST /v1/projects/{p}/answers`):
the k bound still held by the database when raters race with batch claims, open claims first, and one
refused item of a batch failing alone."""

from __future__ import annotations

import threading

from sqlalchemy import func, select

from llmops.feedback import assignment, projects
from llmops.feedback.project_schemas import MAX_ANSWERS_PER_REQUEST, MAX_CLAIM_COUNT
from llmops.feedback.project_store import ProjectStore
from llmops.feedback.tables import Assignment

QUESTIONS = [{"type": "rating", "name": "quality"}]


def test_raters_racing_with_batch_claims_never_exceed_k(db_url):
    """12 threads (own connections) each claim up to 3 of 4 items at once, k=3: every item ends with
    exactly 3 slot holders (12 claims in all), no rater holds an item twice."""
    from llmops.db import session_factory

    k, n_raters, n_items, count = 3, 12, 4, 3
    ps = ProjectStore(db_url)
    ps.create_project({"name": "p", "overlap_k": k, "questions": QUESTIONS})
    ids = [ps.create_item(f"prompt {i}", [{"text": "a"}, {"text": "b"}], project="p").item_id for i in range(n_items)]
    raters = [ps.rater(f"batch{i}") for i in range(n_raters)]
    sessions = session_factory(db_url)
    barrier = threading.Barrier(n_raters)
    got: dict[int, list[int]] = {}
    errors: list[BaseException] = []
    sqlite = db_url.startswith("sqlite")

    def race(rater: int) -> None:
        try:
            if sqlite:  # SQLite serialises writers at BEGIN IMMEDIATE; PostgreSQL meets inside the transactions
                barrier.wait(timeout=30)
            with sessions() as s, s.begin():
                project = projects.get_project(s, "p")
                if not sqlite:
                    barrier.wait(timeout=30)
                claims = assignment.claim_batch(s, project, rater, count)
            got[rater] = [c.item_id for c in claims]
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=race, args=(r,)) for r in raters]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, [str(e) for e in errors]
    assert all(len(v) == len(set(v)) <= count for v in got.values()), got
    assert sum(len(v) for v in got.values()) <= k * n_items, got
    # Under contention a batch claimer that already holds items does not wait for locked ones (no
    # deadlock): once the race is over, asking again (own claims first) fills every remaining slot.
    for rater in raters:
        with sessions() as s, s.begin():
            got[rater] = [c.item_id for c in assignment.claim_batch(s, projects.get_project(s, "p"), rater, count)]
    assert sum(len(v) for v in got.values()) == k * n_items, got  # every slot taken, none twice
    with session_factory(db_url)() as s:
        holders = dict(s.execute(select(Assignment.item_id, func.count()).where(Assignment.slot.is_not(None))
                                 .group_by(Assignment.item_id)).all())
    assert holders == {i: k for i in ids}


def _project(client, keys, n_items: int, k: int = 1) -> list[dict]:
    r = client.post("/v1/projects", headers=keys.headers("admin"), json={
        "name": "b", "overlap_k": k, "questions": [{"type": "rating", "name": "q"}]})
    assert r.status_code == 201, r.text
    made = []
    for i in range(n_items):
        r = client.post("/v1/items", headers=keys.headers("service"), json={
            "prompt": f"p{i}", "project": "b", "responses": [{"text": "x"}, {"text": "y"}]})
        assert r.status_code == 201, r.text
        made.append(r.json())
    return made


def test_batch_claim_and_batch_answer_over_http(client, keys):
    made = _project(client, keys, n_items=5)
    h = keys.headers("rater")
    one = client.post("/v1/projects/b/next", headers=h).json()  # an open claim, then a batch
    assert one["item"]["id"] == made[0]["item_id"] and [i["id"] for i in one["items"]] == [made[0]["item_id"]]
    r = client.post("/v1/projects/b/next?count=3", headers=h)
    assert r.status_code == 200, r.text
    batch = r.json()
    ids = [i["id"] for i in batch["items"]]
    assert ids == [m["item_id"] for m in made[:3]]  # the open claim first, then the oldest open items
    assert batch["item"]["id"] == ids[0] and batch["expires_at"]
    again = client.post("/v1/projects/b/next?count=3", headers=h).json()
    assert [i["id"] for i in again["items"]] == ids  # held until answered: the same items, renewed
    # The second rater cannot have them (k=1): they get the rest.
    other = client.post("/v1/projects/b/next?count=5", headers=keys.headers("rater2")).json()
    assert [i["id"] for i in other["items"]] == [m["item_id"] for m in made[3:]]

    def answer(item):
        return {"item_id": item["id"], "ratings": [{"response_id": x["id"], "score": 4} for x in item["responses"]]}

    taken_by_other = other["items"][0]
    r = client.post("/v1/projects/b/answers", headers=h,
                    json={"answers": [answer(batch["items"][0]), answer(taken_by_other), answer(batch["items"][2])]})
    assert r.status_code == 200, r.text
    out = r.json()
    assert (out["n_ok"], out["n_failed"]) == (2, 1)
    ok, full, ok2 = out["results"]
    assert ok["status"] == 200 and ok["answer"]["complete"] and ok["answer"]["n_ok"] == 2
    assert full["status"] == 409 and full["error"]["code"] == "item_full" and full["answer"] is None
    assert ok2["status"] == 200 and ok2["item_id"] == ids[2]
    left = client.post("/v1/projects/b/next?count=3", headers=h).json()
    assert [i["id"] for i in left["items"]] == [ids[1]]  # answered items left the rater's queue
    progress = client.get("/v1/projects/b/progress", headers=h).json()
    assert progress["n_answers"] == 2


def test_batch_limits_are_named_and_enforced(client, keys):
    made = _project(client, keys, n_items=1)
    h = keys.headers("rater")
    r = client.post(f"/v1/projects/b/next?count={MAX_CLAIM_COUNT + 1}", headers=h)
    assert r.status_code == 422 and r.json()["error"]["field"] == "query.count", r.text
    assert client.post("/v1/projects/b/next?count=0", headers=h).status_code == 422
    item = made[0]["item_id"]
    twice = {"answers": [{"item_id": item, "ratings": []}, {"item_id": item, "ratings": []}]}
    r = client.post("/v1/projects/b/answers", headers=h, json=twice)
    assert r.status_code == 422 and "twice" in r.json()["error"]["message"], r.text
    many = {"answers": [{"item_id": i + 1} for i in range(MAX_ANSWERS_PER_REQUEST + 1)]}
    assert client.post("/v1/projects/b/answers", headers=h, json=many).status_code == 422
    assert client.post("/v1/projects/nope/answers", headers=h, json={"answers": [{"item_id": item}]}).status_code == 404

"""Projects over the API: validation, routing of new items (model globs, tags, deterministic sampling,
default project, explicit project), adding items, gold answers, the rater's view and the answer endpoint."""

from __future__ import annotations

import pytest

from .helpers import new_item

RATING = {"type": "rating", "name": "quality", "scale_min": 1, "scale_max": 7, "labels": {"1": "useless", "7": "perfect"}}
PREF = {"type": "preference", "name": "better"}


def _project(client, keys, **fields) -> dict:
    body = {"name": "chat", "guidelines": "# Rate\nBe **fair**.", "questions": [RATING, PREF], "overlap_k": 2, **fields}
    r = client.post("/v1/projects", json=body, headers=keys.headers("admin"))
    assert r.status_code == 201, r.text
    return r.json()


def _item(client, keys, models=("m0", "m1"), **extra) -> dict:
    body = {"prompt": "Say hi", "metadata": {"user": "u-1"},
            "responses": [{"text": f"answer {i}", "model": m} for i, m in enumerate(models)], **extra}
    r = client.post("/v1/items", json=body, headers=keys.headers("service"))
    assert r.status_code == 201, r.text
    return r.json()


def _project_of(db_url, item_id):
    from llmops.db import session_factory
    from llmops.feedback.tables import Project, ProjectItem

    with session_factory(db_url)() as s:
        row = s.get(ProjectItem, item_id)
        return None if row is None else (s.get(Project, row.project_id).name, row.routed_by)


def test_project_validation_and_uniqueness(client, keys):
    admin = keys.headers("admin")
    made = _project(client, keys)
    assert made["questions"][0]["labels"] == {"1": "useless", "7": "perfect"} and made["overlap_k"] == 2
    assert client.get("/v1/projects/chat", headers=keys.headers("rater")).json()["guidelines"].startswith("# Rate")
    r = client.post("/v1/projects", json={"name": "chat", "questions": [PREF]}, headers=admin)
    assert r.status_code == 409 and r.json()["error"]["code"] == "duplicate_project"
    bad = [
        ({"name": "x", "questions": []}, "questions"),
        ({"name": "x", "questions": [PREF], "overlap_k": 0}, "overlap_k"),
        ({"name": "bad name!", "questions": [PREF]}, "name"),
        ({"name": "x", "questions": [PREF], "guidelines": "g" * 50_001}, "guidelines"),
        ({"name": "x", "questions": [RATING, {**RATING, "name": "again"}]}, "one question of each kind"),
        ({"name": "x", "questions": [{**RATING, "labels": {"9": "off"}}]}, "outside the scale"),
        ({"name": "x", "questions": [{"type": "critique", "name": "c", "target": "comparison"}]}, "needs a preference"),
        ({"name": "x", "questions": [{"type": "vote", "name": "v"}]}, "type"),
    ]
    for body, expect in bad:
        r = client.post("/v1/projects", json=body, headers=admin)
        assert r.status_code == 422, (body, r.text)
        assert expect in r.text, (expect, r.text)
    _project(client, keys, name="catch-all", is_default=True)
    r = client.post("/v1/projects", json={"name": "second-default", "questions": [PREF], "is_default": True}, headers=admin)
    assert r.status_code == 409 and r.json()["error"]["code"] == "default_exists"
    r = client.patch("/v1/projects/nope", json={"guidelines": "x"}, headers=admin)
    assert r.status_code == 404
    r = client.patch("/v1/projects/chat", json={"questions": [{"type": "rating", "name": "quality", "scale_max": 7}]},
                     headers=admin)
    assert r.status_code == 200, r.text
    assert r.json()["questions"] == [{"type": "rating", "name": "quality", "required": True, "text": None,
                                      "scale_min": 1, "scale_max": 7, "labels": {}}]  # defaults stored, not dropped
    r = client.patch("/v1/projects/chat", json={"overlap_k": None}, headers=admin)
    assert r.status_code == 422 and r.json()["error"]["field"] == "overlap_k"


def test_routing_rules_default_project_and_explicit_project(client, keys, db_url):
    admin = keys.headers("admin")
    _project(client, keys, name="prod", routing={"models": ["*@prod"]}, priority=10)
    _project(client, keys, name="tagged", routing={"tags": ["support"]}, questions=[PREF])
    plain = _item(client, keys, models=("registry:chat@staging", "builtin:tiny"))
    assert _project_of(db_url, plain["item_id"]) is None  # no rule, no default: no rater queue
    prod = _item(client, keys, models=("registry:chat@prod", "builtin:tiny"))
    assert _project_of(db_url, prod["item_id"]) == ("prod", "rule")
    assert client.get(f"/v1/items/{prod['item_id']}", headers=admin).json()["scale_max"] == 7  # the project's scale
    tagged = _item(client, keys, metadata={"tags": ["support", "de"]})
    assert _project_of(db_url, tagged["item_id"]) == ("tagged", "rule")
    # an explicit scale that differs from a rule's project's scale: that project is not a fit
    other_scale = _item(client, keys, models=("x@prod",), scale_min=0, scale_max=1)
    assert _project_of(db_url, other_scale["item_id"]) is None
    _project(client, keys, name="fallback", is_default=True, questions=[PREF])
    assert _project_of(db_url, _item(client, keys)["item_id"]) == ("fallback", "default")
    explicit = _item(client, keys, models=("x@prod",), project="tagged")
    assert _project_of(db_url, explicit["item_id"]) == ("tagged", "explicit")
    r = client.post("/v1/items", json={"prompt": "p", "responses": [{"text": "t"}], "project": "missing"},
                    headers=keys.headers("service"))
    assert r.status_code == 404 and r.json()["error"]["field"] == "project"
    r = client.post("/v1/items", json={"prompt": "p", "responses": [{"text": "t"}], "project": "prod", "scale_max": 3},
                    headers=keys.headers("service"))
    assert r.status_code == 422 and r.json()["error"]["code"] == "scale_mismatch"


def test_sampling_is_deterministic_and_close_to_the_rate():
    from llmops.feedback.projects import sampled
    from llmops.feedback.schemas import ItemIn

    items = [ItemIn(prompt=f"question {i}", responses=[{"text": f"answer {i}"}]) for i in range(2000)]
    picks = [sampled("proj", it, 0.25) for it in items]
    assert picks == [sampled("proj", it, 0.25) for it in items]  # reproducible
    assert 0.22 < sum(picks) / len(picks) < 0.28
    other = [sampled("other-proj", it, 0.25) for it in items]
    assert picks != other  # the project name decorrelates projects
    assert all(sampled("proj", it, 1.0) for it in items[:10]) and not any(sampled("proj", it, 0.0) for it in items[:10])


def test_add_items_per_element_results_and_gold(client, keys, db_url):
    admin = keys.headers("admin")
    _project(client, keys, name="a")
    _project(client, keys, name="b", questions=[PREF])
    i1 = new_item(client, keys, scale_min=1, scale_max=7)
    i2 = new_item(client, keys)  # scale 1..5: not project a's
    i3 = new_item(client, keys, project="b")
    r = client.post("/v1/projects/a/items", json={"item_ids": [i1["item_id"], i2["item_id"], i3["item_id"], 10**9,
                                                                i1["item_id"]]}, headers=keys.headers("service"))
    assert r.status_code == 200, r.text
    codes = [x["error"]["code"] if x["error"] else x["status"] for x in r.json()["results"]]
    assert codes == [200, "scale_mismatch", "in_other_project", "not_found", 200]
    a, b = i1["response_ids"]
    path = f"/v1/projects/a/items/{i1['item_id']}/gold"
    assert client.put(path, json={"ratings": {str(a): 9}}, headers=admin).json()["error"]["code"] == "out_of_scale"
    assert client.put(path, json={"ratings": {str(i3["response_ids"][0]): 3}}, headers=admin).status_code == 404
    assert client.put(path, json={}, headers=admin).status_code == 422
    r = client.put(path, json={"ratings": {str(a): 6}, "preference": {"chosen": a, "rejected": b}}, headers=admin)
    assert r.status_code == 200 and r.json()["gold"]["ratings"] == {str(a): 6}
    assert client.put(f"/v1/projects/b/items/{i1['item_id']}/gold", json={"ratings": {str(a): 3}},
                      headers=admin).status_code == 404  # not in project b
    assert client.delete(path, headers=admin).json()["gold"] is None


def test_rater_view_guidelines_answer_and_metadata_setting(client, keys):
    critique = {"type": "critique", "name": "why", "target": "comparison"}
    fix = {"type": "correction", "name": "fix", "required": False}
    _project(client, keys, name="full", questions=[RATING, PREF, critique, fix], routing={}, overlap_k=1)
    item = _item(client, keys)
    rater = keys.headers("rater")
    got = client.post("/v1/projects/full/next", headers=rater).json()
    assert got["item"]["id"] == item["item_id"] and got["expires_at"]
    assert all(r["model"] is None for r in got["item"]["responses"])  # blind by default
    a, b = item["response_ids"]
    ans = client.post(f"/v1/projects/full/items/{item['item_id']}/answer", headers=rater, json={
        "ratings": [{"response_id": a, "score": 6, "critique": "clear"}, {"response_id": b, "score": 8}],
        "comparison": {"chosen": a, "rejected": b},
        "corrections": [{"response_id": b, "text": "A better answer."}, {"response_id": 10**9, "text": "x"}]}).json()
    assert [(r["kind"], r["status"]) for r in ans["results"]] == [
        ("rating", 201), ("rating", 422), ("comparison", 201), ("correction", 201), ("correction", 404)]
    assert ans["n_failed"] == 2 and not ans["complete"] and ans["missing"] == ["quality", "why"]
    # the comparison is stored already (a second one is a duplicate, its critique is not taken)
    r = client.post(f"/v1/projects/full/items/{item['item_id']}/answer", headers=rater, json={
        "ratings": [{"response_id": b, "score": 3}], "comparison": {"chosen": a, "rejected": b, "critique": "a is right"}})
    body = r.json()
    assert body["results"][1]["error"]["code"] == "duplicate_comparison" and body["missing"] == ["why"]
    assert client.post("/v1/comparisons", headers=rater, json={
        "item_id": item["item_id"], "chosen": b, "rejected": a, "critique": "second thoughts"}).status_code == 409
    # still incomplete ("why" is required): the item stays this rater's claim
    assert client.post("/v1/projects/full/next", headers=rater).json()["item"]["id"] == item["item_id"]
    client.patch("/v1/projects/full", json={"show_model_metadata": True}, headers=keys.headers("admin"))
    shown = client.post("/v1/projects/full/next", headers=rater).json()["item"]
    assert {r["model"] for r in shown["responses"]} == {"m0", "m1"}
    assert [r["id"] for r in shown["responses"]] == [r["id"] for r in got["item"]["responses"]]  # same order
    assert shown["metadata"] is None  # the item's metadata (end-user ids, system prompts) stays hidden
    prog = client.get("/v1/projects/full/progress", headers=rater).json()
    assert prog["raters"] == [{"rater": "alice", "answered": 0, "skipped": 0, "claimed": 1}]


def test_comparison_critique_is_stored(client, keys, db_url):
    from sqlalchemy import select

    from llmops.db import session_factory
    from llmops.feedback.tables import Comparison

    item = new_item(client, keys)
    a, b = item["response_ids"]
    r = client.post("/v1/comparisons", headers=keys.headers("rater"),
                    json={"item_id": item["item_id"], "chosen": a, "rejected": b, "critique": "shorter and right"})
    assert r.status_code == 201
    with session_factory(db_url)() as s:
        assert s.scalar(select(Comparison.critique).where(Comparison.id == r.json()["id"])) == "shorter and right"


@pytest.mark.parametrize("tie_allowed", [True, False])
def test_ties_follow_the_question(client, keys, tie_allowed):
    _project(client, keys, name="t", questions=[{**PREF, "allow_tie": tie_allowed}], routing={}, overlap_k=1)
    item = _item(client, keys)
    r = client.post(f"/v1/projects/t/items/{item['item_id']}/answer", headers=keys.headers("rater"),
                    json={"comparison": {"tie": item["response_ids"]}}).json()
    assert r["complete"] is tie_allowed
    if not tie_allowed:
        assert r["results"][0]["error"]["code"] == "tie_not_allowed"


def test_project_administration_is_left_out_without_the_admin_api(sqlite_url):
    from fastapi.testclient import TestClient

    from llmops.feedback.api import create_app

    from .helpers import make_keys

    keys = make_keys(sqlite_url)
    admin = keys.headers("admin")
    with TestClient(create_app(sqlite_url, admin_api=False), base_url="http://localhost") as c:
        assert c.post("/v1/projects", json={"name": "x", "questions": [PREF]}, headers=admin).status_code in (404, 405)
        assert c.get("/v1/projects/x/quality", headers=admin).status_code == 404
        assert c.post("/v1/projects/x/next", headers=keys.headers("rater")).status_code == 404  # routed: no project x
        assert c.post("/v1/projects/x/next", headers=keys.headers("rater")).json()["error"]["field"] == "project"


def test_answer_retried_with_the_same_idempotency_key_is_replayed(client, keys, db_url):
    from sqlalchemy import func, select

    from llmops.db import session_factory
    from llmops.feedback.tables import Correction, Rating

    _project(client, keys, name="idem", questions=[RATING, {"type": "correction", "name": "fix"}], overlap_k=1)
    item = _item(client, keys, project="idem")
    a, b = item["response_ids"]
    body = {"ratings": [{"response_id": a, "score": 5}, {"response_id": b, "score": 2}],
            "corrections": [{"response_id": b, "text": "Better.", "metadata": {"simulated": True}}]}
    h = {**keys.headers("rater"), "Idempotency-Key": "answer-1"}
    first = client.post(f"/v1/projects/idem/items/{item['item_id']}/answer", json=body, headers=h)
    again = client.post(f"/v1/projects/idem/items/{item['item_id']}/answer", json=body, headers=h)
    assert first.status_code == again.status_code == 200 and first.json()["complete"]
    assert again.headers.get("idempotent-replayed") == "true" and again.json() == first.json()
    with session_factory(db_url)() as s:
        assert s.scalar(select(func.count()).select_from(Rating)) == 2
        stored = s.scalars(select(Correction)).all()
    assert [(c.response_id, c.text, c.meta) for c in stored] == [(b, "Better.", {"simulated": True})]


def test_project_store_add_to_project_raises_the_first_failure(sqlite_url):
    from llmops.feedback.errors import NotFound
    from llmops.feedback.project_store import ProjectStore

    ps = ProjectStore(sqlite_url)
    ps.create_project({"name": "p", "questions": [PREF]})
    made = ps.create_item("q", [{"text": "a"}, {"text": "b"}])
    assert ps.add_to_project("p", [made.item_id, made.item_id]) == [made.item_id, made.item_id]
    with pytest.raises(NotFound):
        ps.add_to_project("p", [10**9])
    assert ps.next_item("p", ps.rater("r")).id == made.item_id


def test_the_rating_scale_is_fixed_once_the_project_has_items(sqlite_url):
    from llmops.feedback.errors import Conflict
    from llmops.feedback.project_store import ProjectStore

    ps = ProjectStore(sqlite_url)
    ps.create_project({"name": "p", "questions": [{"type": "rating", "name": "q"}]})
    ps.update_project("p", {"questions": [{"type": "rating", "name": "q", "scale_max": 7}]})  # no items yet
    made = ps.create_item("x", [{"text": "a"}], project="p")
    assert (ps.get_item(made.item_id).scale_min, ps.get_item(made.item_id).scale_max) == (1, 7)
    with pytest.raises(Conflict, match="scale cannot change"):
        ps.update_project("p", {"questions": [{"type": "rating", "name": "q", "scale_max": 5}]})
    relabelled = ps.update_project("p", {"questions": [{"type": "rating", "name": "q", "scale_max": 7,
                                                        "labels": {7: "top"}}]})
    assert relabelled.questions[0].labels == {7: "top"}

"""Raters racing over HTTP: a real `llmops feedback serve` (two worker processes on PostgreSQL), many
raters claiming and answering at once through the group committer; no item ever gets more than k."""

from __future__ import annotations

import threading

import httpx
from sqlalchemy import func, select


def test_concurrent_raters_over_http_never_exceed_k(db_url, server_factory):
    from llmops.db import session_factory, upgrade
    from llmops.feedback.auth import create_key
    from llmops.feedback.tables import Assignment

    upgrade(db_url)
    k, n_items, n_raters = 2, 4, 8
    with session_factory(db_url)() as s, s.begin():
        admin = create_key(s, "admin", "admin").token
        service = create_key(s, "service", "svc").token
        raters = [create_key(s, "rater", f"rater{i}").token for i in range(n_raters)]
    srv = server_factory(db_url, workers=2 if db_url.startswith("postgresql") else 1)
    auth = lambda t: {"Authorization": f"Bearer {t}"}  # noqa: E731
    with httpx.Client(base_url=srv.base, timeout=60) as c:
        r = c.post("/v1/projects", headers=auth(admin), json={
            "name": "race", "overlap_k": k, "questions": [{"type": "rating", "name": "q"}]})
        assert r.status_code == 201, r.text
        for i in range(n_items):
            r = c.post("/v1/items", headers=auth(service), json={
                "prompt": f"p{i}", "project": "race", "responses": [{"text": "a"}, {"text": "b"}]})
            assert r.status_code == 201, r.text
    barrier = threading.Barrier(n_raters)
    done: dict[str, list[int]] = {}
    errors: list[str] = []

    def work(token: str) -> None:
        mine: list[int] = []
        with httpx.Client(base_url=srv.base, timeout=60, headers=auth(token)) as c:
            barrier.wait(timeout=60)
            while True:
                r = c.post("/v1/projects/race/next")
                if r.status_code != 200:
                    errors.append(f"next {r.status_code} {r.text}")
                    return
                item = r.json()["item"]
                if item is None:
                    break
                a = c.post(f"/v1/projects/race/items/{item['id']}/answer", json={
                    "ratings": [{"response_id": x["id"], "score": 3} for x in item["responses"]]})
                if a.status_code != 200 or not a.json()["complete"]:
                    errors.append(f"answer {a.status_code} {a.text}")
                    return
                mine.append(item["id"])
        done[token] = mine

    threads = [threading.Thread(target=work, args=(t,)) for t in raters]
    for t in threads:
        t.start()
    for t in threads:
        t.join(180)
    assert not errors, errors[:3]
    answered = [i for mine in done.values() for i in mine]
    assert len(answered) == k * n_items
    assert all(len(set(mine)) == len(mine) for mine in done.values())  # no rater got an item twice
    with session_factory(db_url)() as s:
        per_item = dict(s.execute(select(Assignment.item_id, func.count()).group_by(Assignment.item_id)).all())
    assert sorted(per_item.values()) == [k] * n_items
    with httpx.Client(base_url=srv.base, timeout=60) as c:
        prog = c.get("/v1/projects/race/progress", headers=auth(admin)).json()
    assert prog["n_complete"] == n_items and prog["n_answers"] == k * n_items
    assert sum(r["answered"] for r in prog["raters"]) == k * n_items

"""Exports pin their rows: a snapshot id re-read while writers keep writing gives the same bytes."""

from __future__ import annotations

import threading

import httpx

from .helpers import make_keys
from .test_group_commit import make_item


def _rows(client: httpx.Client, snap: str, headers: dict, limit: int) -> list[bytes]:
    pages, cursor = [], -1
    while True:
        r = client.get(f"/v1/exports/{snap}/rows", params={"cursor": cursor, "limit": limit}, headers=headers)
        assert r.status_code == 200, r.text
        pages.append(r.content)
        cursor = r.json()["next_cursor"]
        if cursor is None:
            return pages


def test_snapshot_pages_are_byte_identical_under_concurrent_writers(db_url: str, server_factory) -> None:
    keys = make_keys(db_url)
    items = [make_item(db_url, n=4) for _ in range(6)]
    admin, raters = keys.headers("admin"), [keys.headers("rater"), keys.headers("rater2")]
    srv = server_factory(db_url)
    stop = threading.Event()
    written = [0]

    def writer(h: dict, offset: int) -> None:  # keeps rating while the snapshot is created and read
        with httpx.Client(base_url=srv.base, timeout=30) as c:
            for k, (_item, rids) in enumerate(items * 3):
                if stop.is_set():
                    return
                rid = rids[(k + offset) % len(rids)]
                r = c.post("/v1/ratings", json={"response_id": rid, "score": 1 + (k + offset) % 5}, headers=h)
                written[0] += r.status_code == 201

    with httpx.Client(base_url=srv.base, timeout=60) as c:
        for (_item, rids) in items[:3]:  # some feedback before the snapshot
            for score, rid in zip((5, 1, 3, 2), rids):
                assert c.post("/v1/ratings", json={"response_id": rid, "score": score},
                              headers=raters[0]).status_code == 201
        threads = [threading.Thread(target=writer, args=(raters[1], i)) for i in range(2)]
        for t in threads:
            t.start()
        made = c.post("/v1/exports", json={"strategy": "all_pairs"}, headers=admin)
        assert made.status_code == 201, made.text
        snap = made.json()
        first = _rows(c, snap["snapshot_id"], admin, limit=4)
        second = _rows(c, snap["snapshot_id"], admin, limit=4)
        stop.set()
        for t in threads:
            t.join()
        third = _rows(c, snap["snapshot_id"], admin, limit=4)  # after every concurrent write landed
        assert first == second == third
        rows = [row for page in first for row in httpx.Response(200, content=page).json()["rows"]]
        assert len(rows) == snap["n_rows"] > 0
        assert c.get(f"/v1/exports/{snap['snapshot_id']}", headers=admin).json()["n_rows"] == snap["n_rows"]
        # Feedback that surely changes a row (the writers may all have landed before the snapshot was read).
        assert c.post("/v1/ratings", json={"response_id": items[0][1][0], "score": 1}, headers=admin).status_code == 201
        later = c.post("/v1/exports", json={"strategy": "all_pairs"}, headers=admin).json()
        assert later["snapshot_id"] != snap["snapshot_id"]  # new feedback, new snapshot; the old one unchanged
        assert _rows(c, snap["snapshot_id"], admin, limit=4) == first
        assert c.get("/v1/exports/fbs_0000/rows", headers=admin).status_code == 404


def test_export_reads_one_repeatable_read_snapshot_on_postgres(pg_url: str) -> None:
    """READ COMMITTED would let the second statement of an export see a rating committed after the first."""
    from sqlalchemy import text

    from llmops.db.engine import read_only_session, upgrade

    upgrade(pg_url)
    with read_only_session(pg_url, snapshot=True) as s, s.begin():
        level = s.execute(text("SHOW transaction_isolation")).scalar()
        read_only = s.execute(text("SHOW transaction_read_only")).scalar()
    assert (level, read_only) == ("repeatable read", "on")

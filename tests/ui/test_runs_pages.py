"""Runs pages over the runs index: list with filters and pages, a run, compare, the admin rescan."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from llmops.ui import create_app
from llmops.ui.session import COOKIE

from .helpers import make_keys, write_run


@pytest.fixture
def env(sqlite_url, tmp_path):
    keys = make_keys(sqlite_url)
    runs = tmp_path / "runs"
    write_run(runs, "base", lr=1e-3, tags=("baseline",), started="2026-11-01T10:00:00+00:00")
    write_run(runs, "fast", lr=3e-3, started="2026-11-02T10:00:00+00:00")
    write_run(runs, "pref", task="dpo", status="failed", started="2026-11-03T10:00:00+00:00")
    app = create_app(sqlite_url, runs_dirs=[runs])
    with TestClient(app, base_url="http://localhost") as c:  # the lifespan scans --runs-dir
        yield c, keys, app, runs


def _as(c: TestClient, app, key: str) -> str:
    cookie, data = app.state.codec.new(key)
    c.cookies.set(COOKIE, cookie)
    return data.csrf


def _ids(html: str) -> list[str]:
    return re.findall(r'<a href="/runs/(\d+)">', html)


def test_list_filters_and_pages(env):
    c, keys, app, _ = env
    _as(c, app, keys.rater)
    r = c.get("/runs")
    assert r.status_code == 200 and len(_ids(r.text)) == 3
    assert "Rescan runs folders" not in r.text  # no admin controls for a rater
    assert len(_ids(c.get("/runs?task=dpo").text)) == 1
    assert len(_ids(c.get("/runs?tag=baseline").text)) == 1
    assert len(_ids(c.get("/runs?status=completed&task=sft").text)) == 2
    page2 = c.get("/runs?per_page=2&page=2")
    assert len(_ids(page2.text)) == 1 and "page 2 of 2" in page2.text
    assert c.get("/runs?per_page=100000").status_code == 400
    assert c.get("/runs?page=zero").status_code == 400


def test_run_page_shows_recipe_curves_checkpoints_and_escaped_logs(env):
    c, keys, app, _ = env
    _as(c, app, keys.rater)
    run_id = _ids(c.get("/runs?q=base").text)[0]
    r = c.get(f"/runs/{run_id}")
    assert r.status_code == 200
    assert "<polyline" in r.text and "step 20" in r.text and "lr: 0.001" in r.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in r.text and "<script>alert" not in r.text
    assert c.get("/runs/999999").status_code == 404


def test_compare_overlays_and_diffs(env):
    c, keys, app, _ = env
    _as(c, app, keys.rater)
    ids = _ids(c.get("/runs?task=sft").text)
    r = c.get("/runs/compare", params={"run": ids})
    assert r.status_code == 200
    assert r.text.count("<polyline") >= 4  # two runs × (train loss, eval loss, ...)
    diff = r.text[r.text.index('id="recipe-diff"'):]
    assert "train.lr" in diff and "model.base" not in diff  # only what differs
    assert "model.base" in c.get("/runs/compare", params={"run": ids, "all_keys": "true"}).text
    assert c.get("/runs/compare", params={"run": ids[:1]}).status_code == 400
    assert c.get("/runs/compare", params={"run": [*ids, 999999]}).status_code == 404


def test_rescan_is_admin_only_and_needs_csrf(env):
    c, keys, app, runs = env
    csrf = _as(c, app, keys.rater)
    assert c.post("/runs/refresh", data={"csrf": csrf}).status_code == 403
    write_run(runs, "late", started="2026-11-04T10:00:00+00:00")
    csrf = _as(c, app, keys.admin)
    assert "Rescan runs folders" in c.get("/runs").text
    assert c.post("/runs/refresh", data={"csrf": "nope"}).status_code == 403
    r = c.post("/runs/refresh", data={"csrf": csrf}, follow_redirects=False)
    assert r.status_code == 303 and "1+indexed" in r.headers["location"]
    assert len(_ids(c.get("/runs").text)) == 4

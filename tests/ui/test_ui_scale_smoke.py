"""The UI-scale benchmark's seeder at a tiny scale (the benchmark itself never runs in the suite):
the seeded database is one the stores and every timed page read without error."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))


@pytest.mark.slow
def test_seeder_builds_a_database_every_timed_page_reads(pg_url, tmp_path, monkeypatch):
    import ui_scale
    import ui_seed
    from fastapi.testclient import TestClient

    from llmops.db import session_factory
    from llmops.feedback import dashboard
    from llmops.feedback.auth import create_key
    from llmops.feedback.store import FeedbackStore
    from llmops.ui.app import create_app

    monkeypatch.setenv("LLMOPS_REGISTRY_ROOT", str(tmp_path / "artifacts"))
    seeded = ui_scale.seed(pg_url, n_ratings=400, n_runs=20, n_versions=6, work=tmp_path)
    counts = seeded["counts"]
    assert counts["feedback"]["ratings"] == 400 and counts["registry"]["versions"] == 6
    assert sum(d["n"] for d in dashboard.rating_distribution(pg_url, window=None)) == 400
    fb = FeedbackStore(pg_url)  # sequences moved past the seeded ids: the store keeps writing
    created = fb.create_item("after the seed", [{"text": "x"}])
    fb.add_rating(created.response_ids[0], 3, fb.rater("late rater"))
    with session_factory(pg_url)() as s, s.begin():
        key = create_key(s, "admin", "bench-admin").token
    client = TestClient(create_app(pg_url, allowed_hosts=None), base_url="http://testserver")
    assert client.post("/login", data={"key": key}, headers={"origin": "http://testserver"},
                       follow_redirects=False).status_code == 303
    for label, path in ui_scale.pages(counts["runs"].get("run_ids", []), 6).items():
        r = client.get(path)
        assert r.status_code == 200, (label, path, r.status_code, re.sub(r"\s+", " ", r.text)[-400:])
    assert ui_seed.admin_dsn(pg_url).startswith("postgresql://")

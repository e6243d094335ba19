"""Monitoring over time (`llmops.monitor.history`) and the keyset pages of jobs."""

from __future__ import annotations

import sys
from datetime import datetime, timedelta, timezone

import numpy as np

from llmops.feedback.store import FeedbackStore
from llmops.monitor import history
from llmops.monitor.drift import DriftConfig, fit_profile
from llmops.monitor.features import simple_tokenize, tokenizer_spec
from llmops.monitor.jobs import JobSpec, JobStore, job_cursor
from llmops.monitor.references import store_reference
from llmops.monitor.synthetic import prompts
from llmops.registry import api


def test_drift_windows_compare_served_prompts_with_the_stored_reference(sqlite_url, tmp_path, monkeypatch):
    monkeypatch.setenv("LLMOPS_REGISTRY_ROOT", str(tmp_path / "artifacts"))
    model = tmp_path / "m"
    model.mkdir()
    (model / "config.json").write_text("{}")
    api.register_version("m", model, db_url=sqlite_url)
    rng = np.random.default_rng(0)
    profile = fit_profile(prompts(rng, 300, 30, 7), simple_tokenize, tokenizer_spec(None),
                          DriftConfig(window_sizes=(50, 100), replicates=200))
    store_reference("m", 1, profile, sqlite_url)
    fb = FeedbackStore(sqlite_url)
    for p in prompts(rng, 60, 90, 7):  # far longer prompts than the reference: drift
        fb.create_item(p, [{"text": "x", "model": "registry:m/1"}], metadata={"source": "llmops.serve"})
    fb.create_item("not served", [{"text": "x"}])  # imported items are not production traffic
    assert [(r["model"], r["version"]) for r in history.list_references(sqlite_url)] == [("m", 1)]
    decade = timedelta(weeks=520)  # windows align to multiples of the window: now sits in the open one
    rows = history.drift_windows(sqlite_url, "m", 1, decade, n_windows=2)
    assert [r["n_prompts"] for r in rows] == [0, 60]
    assert rows[0]["drift"] is None and rows[1]["drift"] is True and "token_length" in rows[1]["drifted_features"]
    later = datetime.now(timezone.utc) + decade  # the prompts' window is closed now: computed once, then reused
    hits = history._closed_window.cache_info().hits
    first = history.drift_windows(sqlite_url, "m", 1, decade, n_windows=2, now=later)
    again = history.drift_windows(sqlite_url, "m", 1, decade, n_windows=2, now=later)
    assert first == again and first[0]["n_prompts"] == 60 and history._closed_window.cache_info().hits > hits


def test_job_and_incident_pages(sqlite_url, tmp_path):
    store = JobStore(sqlite_url, root=tmp_path / "jobs")
    t0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
    ids = [store.submit(JobSpec(argv=[sys.executable, "-c", "pass"], model="m"), t0 + timedelta(minutes=i))
           for i in range(5)]
    first = store.list(limit=2)
    assert [j["id"] for j in first] == ids[::-1][:2]
    rest = store.list(limit=10, before=job_cursor(first[-1]))
    assert [j["id"] for j in rest] == ids[::-1][2:]
    assert history.incidents_page(sqlite_url, limit=5) == ([], None)
    assert history.alert_events_page(sqlite_url, limit=5) == ([], None)

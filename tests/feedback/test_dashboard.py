"""Feedback summaries for the web UI (`llmops.feedback.dashboard`): pages, distributions, agreement."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from llmops.feedback import dashboard
from llmops.feedback.store import FeedbackStore


def test_progress_distribution_agreement_and_critiques(db_url):
    fb = FeedbackStore(db_url)
    raters = [fb.rater(f"r{i}") for i in range(3)]
    for k in range(4):
        created = fb.create_item(f"p{k}", [{"text": "a", "model": "m", "model_version": "m/1"},
                                           {"text": "b", "model": "m", "model_version": "m/2"}])
        for j, rid in enumerate(raters[: 1 + k % 3]):
            fb.add_rating(created.response_ids[0], 4, rid, critique="too short" if j == 0 and k == 3 else None)
            fb.add_rating(created.response_ids[1], 2 + j % 2, rid)
    rows, cursor = dashboard.rater_progress(db_url, limit=2)
    assert [r["name"] for r in rows] == ["r0", "r1"] and cursor == rows[-1]["rater_id"]
    assert rows[0]["n_ratings"] == 8 and rows[0]["n_critiques"] == 1
    rest, end = dashboard.rater_progress(db_url, limit=2, after=cursor)
    assert [r["name"] for r in rest] == ["r2"] and end is None
    dist = {d["model_version"]: d for d in dashboard.rating_distribution(db_url)}
    assert dist["m/1"]["counts"] == {"1": 0, "2": 0, "3": 0, "4": 7, "5": 0} and dist["m/1"]["mean"] == 4.0
    assert dist["m/2"]["n"] == 7
    future = datetime.now(timezone.utc) + timedelta(days=60)
    assert dashboard.rating_distribution(db_url, now=future) == []  # outside the 7-day window
    agreement = dashboard.recent_agreement(db_url)
    assert agreement["n_ratings"] == 14 and agreement["n_units_pairable"] == 4
    critiques, more = dashboard.recent_critiques(db_url)
    assert [(c["critique"], c["rater"], c["prompt"], c["model_version"]) for c in critiques] == [
        ("too short", "r0", "p3", "m/1")] and more is None


def test_cli_stats_prints_the_dashboard(sqlite_url, capsys):
    import json

    from llmops.cli.main import main

    fb = FeedbackStore(sqlite_url)
    created = fb.create_item("p", [{"text": "a", "model_version": "m/1"}])
    fb.add_rating(created.response_ids[0], 5, fb.rater("r0"), critique="great")
    assert main(["feedback", "stats", "--db", sqlite_url, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["distribution"][0]["counts"]["5"] == 1 and data["critiques"][0]["critique"] == "great"
    assert main(["feedback", "stats", "--db", sqlite_url]) == 0
    assert "m/1" in capsys.readouterr().out


def test_quality_by_window_matches_one_query_per_window(db_url):
    from llmops.feedback.queries import quality_by_model, quality_by_window

    fb = FeedbackStore(db_url)
    rater = fb.rater("r")
    for k in range(6):
        created = fb.create_item(f"p{k}", [{"text": "a", "model": "A"}, {"text": "b", "model": "B"}])
        fb.add_rating(created.response_ids[0], 1 + k % 5, rater)
        fb.add_comparison({"item_id": created.item_id, "ranking": [created.response_ids[k % 2],
                                                                   created.response_ids[1 - k % 2]]}, rater)
    now = datetime.now(timezone.utc)
    edges = [now - timedelta(days=2), now - timedelta(hours=1), now + timedelta(minutes=1), now + timedelta(days=1)]
    windows = quality_by_window(db_url, edges)
    assert windows == [quality_by_model(db_url, a, b) for a, b in zip(edges, edges[1:])]
    assert windows[0] == [] and windows[2] == [] and {r["model"] for r in windows[1]} == {"A", "B"}

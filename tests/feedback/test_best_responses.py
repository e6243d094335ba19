"""Best-rated responses as SFT data (rejection-sampling fine-tuning), on SQLite and PostgreSQL."""

from __future__ import annotations

import json

import pytest

from llmops.feedback.best_responses import export_best_responses
from llmops.feedback.errors import Invalid
from llmops.feedback.store import FeedbackStore


def test_best_rated_response_per_item(db_url, tmp_path):
    s = FeedbackStore(db_url)
    alice, bob = s.rater("alice"), s.rater("bob")
    ids = {}
    for prompt, texts, scores in (("q1", "ABC", [(5, 2, 1), (4, 3, 1)]),  # A wins (4.5)
                                  ("q2", "DE", [(2, 2), (2, 2)]),        # everything equal: below min_gain
                                  ("q3", "FG", [(2, 1), (2, 1)]),        # best only 2: below min_rating
                                  ("q4", "H", [(5,), (5,)])):            # one response: nothing to choose
        made = s.create_item(prompt, [{"text": f"resp {x}", "model": "m"} for x in texts], context="ctx")
        ids.update(zip(texts, made.response_ids))
        for rater, row in zip((alice, bob), scores):
            for rid, score in zip(made.response_ids, row):
                s.add_rating(rid, score, rater)
    res = export_best_responses(db_url, tmp_path / "best.jsonl", min_rating=3.0, min_gain=0.1)
    rows = [json.loads(line) for line in open(res.path)]
    assert [(r["prompt"], r["completion"], r["mean_rating"], r["n_raters"]) for r in rows] == [
        ("ctx\n\nq1", "resp A", 4.5, 2)]
    assert rows[0]["response_id"] == ids["A"]
    meta = json.loads((tmp_path / "best.jsonl.meta.json").read_text())
    assert meta["n_rows"] == 1 and meta["n_items_rated"] == 4 and meta["snapshot_id"] == res.snapshot_id
    loose = export_best_responses(db_url, tmp_path / "all.jsonl")
    assert [r["completion"] for r in loose.rows] == ["resp A", "resp D", "resp F"]  # ties: lower id wins
    assert loose.snapshot_id != res.snapshot_id
    with pytest.raises(Invalid):
        export_best_responses(db_url, tmp_path / "x.jsonl", min_gain=-1)

"""The quickstart's SIMULATED raters through a project's queue (assignment, overlap k = 3) judge
exactly as the direct path did: the same ratings and comparisons, so the same preference export;
each item gets one simulated correction (the reference), which becomes an SFT row. No model needed."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from llmops.db import session_factory

TEXTS = [
    ("Return the sum of a and b.", ["Return the sum of a and b.", "Add numbers.", "Sort a list.", "The sum."]),
    ("Open the file and read it.", ["Read a file.", "Open the file and read it all.", "Close it.", "Open."]),
    ("Parse the JSON document.", ["Parse JSON.", "Parse JSON.", "Write YAML.", "Parse the JSON document now."]),
    ("Compute the mean of values.", ["Compute a mean.", "Median.", "Compute the mean of the values.", "x"]),
]


def _world(tmp_path, name: str, project: str | None):
    from llmops.feedback.store import FeedbackStore
    from llmops.loop import rater_queue, raters

    db = f"sqlite:///{tmp_path / name}.db"
    store = FeedbackStore(db)
    if project:
        rater_queue.ensure_project(db, rater_queue.project_spec(project, 3))
    served = []
    for ref, texts in TEXTS:
        made = store.create_item(f"Summarise: {ref}", [{"text": t, "model": "m"} for t in texts], project=project)
        served.append(raters.Served(f"Summarise: {ref}", ref, made.item_id, made.response_ids, texts, "m/1"))
    return db, served, raters.create_rater_keys(db, 3)


def _serve(db: str):
    from llmops.feedback.api.app import create_app
    from llmops.serve.server import ServerThread

    return ServerThread(create_app(db, migrate=False))


def test_queue_gives_the_same_judgements_and_corrections_feed_sft(tmp_path):
    from llmops.feedback.export import export_preferences
    from llmops.feedback.tables import Assignment, Comparison, Correction, Rating
    from llmops.loop import corrections, rater_queue, raters

    db_old, served_old, keys_old = _world(tmp_path, "direct", None)
    with _serve(db_old) as srv:
        before = raters.rate(srv.url, served_old, keys_old, compare=True)
    db_new, served_new, keys_new = _world(tmp_path, "queue", "docs-feedback")
    with _serve(db_new) as srv:
        after = rater_queue.work(srv.url, "docs-feedback", served_new, keys_new)
        again = rater_queue.work(srv.url, "docs-feedback", served_new, keys_new)  # every queue is empty now

    for k in ("ratings", "comparisons", "ties", "rating_histogram"):
        assert after[k] == before[k], k
    assert after["items_per_rater"] == [4, 4, 4] and again["items_per_rater"] == [0, 0, 0]
    assert after["corrections"] == 4
    old = export_preferences(db_old, tmp_path / "old.jsonl", strategy="all_pairs")
    new = export_preferences(db_new, tmp_path / "new.jsonl", strategy="all_pairs")
    assert new.rows == old.rows and new.snapshot_id == old.snapshot_id and new.n_rows > 0

    with session_factory(db_new)() as s:
        states = s.execute(select(Assignment.state, func.count()).group_by(Assignment.state)).all()
        assert states == [("done", 12)]  # 4 items x k=3 raters
        assert s.scalar(select(func.count()).select_from(Rating)) == 3 * 16
        assert s.scalar(select(func.count()).select_from(Comparison)) == 3 * 4
        fixes = list(s.scalars(select(Correction).order_by(Correction.item_id)))
    assert [f.meta for f in fixes] == [{"simulated": True, "source": "reference"}] * 4
    assert [f.text for f in fixes] == [ref for ref, _ in TEXTS]
    weakest = [min(range(4), key=lambda i: (raters.rouge_l(t[i], ref), i)) for ref, t in TEXTS]
    assert [f.response_id for f in fixes] == [s.response_ids[w] for s, w in zip(served_new, weakest)]

    sft = corrections.export_sft(db_new, tmp_path / "sft.jsonl", "docs-feedback")
    rows = [json.loads(line) for line in (tmp_path / "sft.jsonl").read_text().splitlines()]
    assert sft["n_rows"] == 4 and sft["snapshot_id"].startswith("fbs_")
    assert [(r["prompt"], r["completion"]) for r in rows] == [(f"Summarise: {ref}", ref) for ref, _ in TEXTS]
    assert corrections.export_sft(db_new, tmp_path / "sft2.jsonl", "docs-feedback")["snapshot_id"] == sft["snapshot_id"]
    # an item of an earlier run left in the project is skipped (stored), not judged
    from llmops.feedback.store import FeedbackStore

    stray = FeedbackStore(db_new).create_item("left over", [{"text": "a"}, {"text": "b"}], project="docs-feedback")
    with _serve(db_new) as srv:
        assert rater_queue.work(srv.url, "docs-feedback", served_new, keys_new[:1])["skipped_foreign"] == 1
    with session_factory(db_new)() as s:
        assert s.scalar(select(Assignment.state).where(Assignment.item_id == stray.item_id)) == "skipped"
    with pytest.raises(Exception):
        rater_queue.ensure_project(db_new, rater_queue.project_spec("docs-feedback", 2))  # not silently a k=2 project

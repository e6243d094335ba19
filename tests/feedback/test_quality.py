"""Rater quality: Krippendorff's alpha against the textbook example, per-question agreement, each rater
against the rest and gold accuracy on a project with hand-computed figures; the CLI and API."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from llmops.feedback.quality import alpha, preference_labels

# Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", section D: 4 coders x 12 units.
TEXTBOOK = [
    [1, 2, 3, 3, 2, 1, 4, 1, 2, None, None, None],
    [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, None, 3],
    [None, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, None],
    [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, None],
]


def _units(matrix) -> dict:
    return {(u,): {c: float(row[u]) for c, row in enumerate(matrix) if row[u] is not None}
            for u in range(len(matrix[0]))}


def test_alpha_matches_krippendorffs_worked_example():
    units = _units(TEXTBOOK)
    assert round(alpha(units, "nominal"), 3) == 0.743
    assert round(alpha(units, "ordinal"), 3) == 0.815
    assert round(alpha(units, "interval"), 3) == 0.849


def test_alpha_agrees_with_the_stores_own_implementation_and_is_undefined_without_pairs():
    from llmops.feedback.agreement import krippendorff_alpha

    rng = np.random.default_rng(0)
    truth = rng.integers(1, 6, size=40)
    units = {(u,): {r: float(np.clip(truth[u] + rng.integers(-1, 2), 1, 5)) for r in range(4) if rng.random() < 0.8}
             for u in range(40)}
    for level in ("interval", "ordinal"):
        ours = krippendorff_alpha({u: list(v.values()) for u, v in units.items()}, level)
        assert math.isclose(alpha(units, level), ours, rel_tol=1e-9, abs_tol=1e-12)
    assert alpha({(1,): {0: 3.0}, (2,): {1: 4.0}}, "ordinal") is None  # no unit with two raters
    assert alpha({(1,): {0: 3.0, 1: 3.0}}, "ordinal") is None  # one value only


def test_preference_labels():
    assert preference_labels({7: 1, 3: 2}) == {(3, 7): "second"}
    assert preference_labels({1: 1, 2: 1}) == {(1, 2): "tie"}
    assert preference_labels({1: 1, 2: 2, 3: 3}) == {(1, 2): "first", (1, 3): "first", (2, 3): "first"}


def _project_with_answers(db_url):
    """Raters a and b agree perfectly; c reverses them. Item 1 is gold (a's answers)."""
    from llmops.feedback.project_store import ProjectStore

    ps = ProjectStore(db_url)
    ps.create_project({"name": "q", "overlap_k": 3, "questions": [
        {"type": "rating", "name": "quality"}, {"type": "preference", "name": "better", "allow_tie": True}]})
    items = [ps.create_item(f"p{i}", [{"text": "x"}, {"text": "y"}], project="q") for i in range(2)]
    scores = {"a": [(5, 1), (4, 2)], "b": [(5, 1), (4, 2)], "c": [(1, 5), (2, 4)]}
    prefs = {"a": ["first", "tie"], "b": ["first", "tie"], "c": ["second", "tie"]}
    for name in "abc":
        rater = ps.rater(name)
        for i, item in enumerate(items):
            x, y = item.response_ids
            cmp = {"tie": [x, y]} if prefs[name][i] == "tie" else (
                {"chosen": x, "rejected": y} if prefs[name][i] == "first" else {"chosen": y, "rejected": x})
            out = ps.answer("q", item.item_id, rater, {
                "ratings": [{"response_id": x, "score": scores[name][i][0]},
                            {"response_id": y, "score": scores[name][i][1]}],
                "comparison": cmp})
            assert out.complete, out
    x, y = items[0].response_ids
    ps.set_gold("q", items[0].item_id, {"ratings": {x: 5, y: 1}, "preference": {"chosen": x, "rejected": y}})
    return ps


def test_project_quality_figures(db_url):
    ps = _project_with_answers(db_url)
    report = ps.quality("q")
    assert report["n_items"] == 2 and report["n_gold_items"] == 1
    rating, pref = report["questions"]["quality"], report["questions"]["better"]
    assert rating["n_units"] == 4 and rating["n_ratings"] == 12 and rating["alpha"] < 0.2
    # item 1: (a,b) agree, (a,c) and (b,c) do not; item 2: all three say tie -> 4 of 6 rater pairs
    assert pref["pairwise_agreement"] == round(4 / 6, 4) and pref["n_rater_pairs"] == 6
    by = {r["rater"]: r for r in report["raters"]}
    # a against the mean of b and c on each response: |5-3|, |1-3|, |4-3|, |2-3| -> 1.5; equal to b only
    assert by["a"]["ratings"]["mae_vs_rest"] == 1.5 and by["a"]["ratings"]["exact_vs_rest"] == 0.5
    assert by["c"]["ratings"]["mae_vs_rest"] == 3.0 and by["c"]["ratings"]["exact_vs_rest"] == 0.0
    assert by["c"]["ratings"]["alpha_without"] == 1.0  # a and b alone agree perfectly
    assert by["a"]["ratings"]["alpha_without"] < 0  # b and c disagree systematically
    assert by["a"]["preference"]["agreement_vs_rest"] == 0.75 and by["c"]["preference"]["agreement_vs_rest"] == 0.5
    assert by["a"]["gold"] == {"n_gold_ratings": 2, "rating_accuracy": 1.0, "rating_mae": 0.0,
                               "n_gold_pairs": 1, "preference_accuracy": 1.0}
    assert by["c"]["gold"]["rating_accuracy"] == 0.0 and by["c"]["gold"]["rating_mae"] == 4.0
    assert by["c"]["gold"]["preference_accuracy"] == 0.0
    assert report["provenance"]["max_rating_id"] is not None and report["provenance"]["alpha"].startswith("krippendorff")


def test_quality_cli_and_api(sqlite_url, capsys):
    from fastapi.testclient import TestClient

    from llmops.cli.main import main
    from llmops.feedback.api import create_app

    from .helpers import make_keys

    _project_with_answers(sqlite_url)
    assert main(["feedback", "quality", "--project", "q", "--json", "--db", sqlite_url]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["questions"]["better"]["pairwise_agreement"] == round(4 / 6, 4)
    assert main(["feedback", "quality", "--project", "q", "--db", sqlite_url]) == 0
    assert "pairwise agreement=0.667" in capsys.readouterr().out
    assert main(["feedback", "quality", "--project", "nope", "--db", sqlite_url]) != 0
    assert main(["feedback", "projects", "progress", "--project", "q", "--db", sqlite_url]) == 0
    assert "2/2 items complete (k=3)" in capsys.readouterr().out
    keys = make_keys(sqlite_url)
    with TestClient(create_app(sqlite_url), base_url="http://localhost") as c:
        r = c.get("/v1/projects/q/quality", headers=keys.headers("admin"))
        assert r.status_code == 200 and {x["rater"] for x in r.json()["raters"]} == {"a", "b", "c"}
        assert c.get("/v1/projects/q/quality", headers=keys.headers("rater")).status_code == 403


def test_projects_cli_create_and_list(sqlite_url, tmp_path, capsys):
    from llmops.cli.main import main

    spec = tmp_path / "project.yaml"
    spec.write_text("name: chat\noverlap_k: 3\nguidelines: |\n  # Rate helpfulness\nquestions:\n"
                    "  - {type: rating, name: helpful, labels: {1: bad, 5: great}}\n"
                    "  - {type: correction, name: fix, required: false}\nrouting: {models: ['*@prod'], sample_rate: 0.1}\n")
    assert main(["db", "upgrade", "--db", sqlite_url]) == 0
    assert main(["feedback", "projects", "create", str(spec), "--db", sqlite_url]) == 0
    assert main(["feedback", "projects", "list", "--db", sqlite_url]) == 0
    out = capsys.readouterr().out
    assert "chat" in out and "helpful:rating" in out and "0.1" in out
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nquestions: []\n")
    assert main(["feedback", "projects", "create", str(bad), "--db", sqlite_url]) != 0
    assert "questions" in capsys.readouterr().err


@pytest.mark.parametrize("level", ["ordinal", "interval"])
def test_quality_level_is_honoured(sqlite_url, level):
    from llmops.db import session_factory
    from llmops.feedback.quality import project_quality

    _project_with_answers(sqlite_url)
    with session_factory(sqlite_url)() as s:
        report = project_quality(s, "q", level=level)
    assert report["questions"]["quality"]["level"] == level

"""The quickstart end to end (fast sizes): report, summary, gates, lineage, idempotent re-run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def test_report_and_summary_have_the_facts(quickstart_fast):
    out = Path(quickstart_fast["out_dir"])
    summary = json.loads((out / "summary.json").read_text())
    for key in ("production_version", "promotions", "evaluation", "training", "feedback", "export", "quality",
                "drift", "registry", "timings", "total_seconds", "simulated_feedback"):
        assert key in summary, key
    assert summary["simulated_feedback"] is True and summary["feedback"]["simulated"] is True
    fb = summary["feedback"]
    assert fb["requests"] == 16 and fb["responses"] == 64  # n=4 sampled choices per request
    assert fb["ratings"] == 2 * 64 and fb["comparisons"] == 2 * 16  # two simulated raters
    assert sum(fb["rating_histogram"].values()) == fb["ratings"]
    assert all(name.startswith("simulated-rater-") for name in fb["raters"])
    assert summary["export"]["snapshot_id"].startswith("fbs_")
    ev = summary["evaluation"]
    for which in ("base", "v1", "v2"):
        m = ev[which]["metrics"]["rougeL"]
        assert m["ci_low"] <= m["score"] <= m["ci_high"]
    assert set(ev["v2_vs_v1"]) >= {"rougeL", "bleu"}
    assert set(summary["drift"]["features"]) == {"token_length", "oov_rate", "token_distribution"}
    stages = [t["stage"] for t in summary["timings"]]
    assert stages[:3] == ["base", "sft", "eval_base"] and any(x.startswith("v2_") for x in stages) and "drift" in stages
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64,") >= 4 and "<svg" in html
    assert "SIMULATED" in html
    assert "<script" not in html and 'src="http' not in html and "src='http" not in html  # self-contained


def test_dpo_keeps_the_step_with_the_best_validation_answers(quickstart_fast):
    """v2's DPO run scores greedy answers on the docstring *validation* split at every validation
    (never the test split the report uses) and keeps the best step as final/."""
    run = Path(quickstart_fast["v2_train"]["run_dir"])
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["recipe"]["train"]["generation_eval"]["split"] == "validation"
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    evals = [r for r in rows if r["kind"] == "eval"]
    assert [e["step"] for e in evals] == [0, 1, 2]
    best = max(evals, key=lambda e: (e["eval_gen_rougeL"], -e["step"]))
    assert manifest["selection"]["metric"] == "eval_gen_rougeL" and manifest["selection"]["best_step"] == best["step"]


def test_lineage_and_the_alias_moves_only_through_gates(quickstart_fast):
    from llmops.registry import api

    db = quickstart_fast["db_url"]
    out = Path(quickstart_fast["out_dir"])
    v1, v2 = api.list_versions("docs", db_url=db)
    assert v1.lineage["base_model_ref"] == "builtin:tiny" and v1.lineage["run_id"]
    assert v2.lineage["parent_version"] == 1
    # the snapshot v2 learned from: the preference export (DPO) or the best-responses export (RFT)
    learned_from = (quickstart_fast["v2_train"].get("data") or quickstart_fast["export"])["snapshot_id"]
    assert v2.lineage["feedback_snapshot_id"] == learned_from
    store = api.get_store(db)
    promo2 = quickstart_fast["promote_v2"]
    assert promo2["why"]
    expected = 2 if promo2["promoted"] else 1
    assert store.alias_version("docs", "production") == expected
    # Every production move is an accepted promotion through the gates file, never a bare set_alias.
    moves = [e for e in api.alias_history("docs", "production", db_url=db)]
    assert [e.to_version for e in moves] == list(range(1, expected + 1))
    assert all(not e.forced for e in moves)
    state = json.loads((out / "state.json").read_text())
    assert state["stages"]["promote_v1"]["result"]["production"]["decision"] == "accepted"
    # a card per version, in the Hugging Face format, with the attached metrics and their intervals
    from huggingface_hub import ModelCard

    for mv in (v1, v2):
        card = ModelCard.load(out / "registry" / "cards" / "docs" / str(mv.version) / "README.md")
        assert card.data.base_model and {r.metric_type for r in card.data.eval_results} >= {"rougeL", "bleu"}
        assert all(r.metric_args and "ci_low" in r.metric_args for r in card.data.eval_results)
        assert "## Promotion history" in card.text and mv.sha256 in card.text


def test_rerun_skips_finished_stages(quickstart_fast, capsys):
    from llmops.loop.quickstart import run_quickstart
    from llmops.registry import api

    again = run_quickstart(quickstart_fast["out_dir"], fast=True)
    err = capsys.readouterr().err
    assert err.count("skipped") >= 14
    assert len(api.list_versions("docs", db_url=quickstart_fast["db_url"])) == 2
    assert again["promote_v2"] == quickstart_fast["promote_v2"]

"""v2 from the same feedback by other routes (fast fork): DPO on correction pairs with the RPO term,
and the no-feedback control (more SFT on v1's own data)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def _fork_and_run(quickstart_fast, out: Path, monkeypatch, **overrides) -> dict:
    from llmops.loop.fork import fork
    from llmops.loop.quickstart import run_quickstart
    from llmops.loop.settings import FAST

    fork(Path(quickstart_fast["out_dir"]), out, replace(FAST, **overrides))
    monkeypatch.setenv("LLMOPS_REGISTRY_ROOT", str(out.resolve() / "registry"))
    return run_quickstart(out, fast=True, **overrides)


def test_dpo_on_correction_pairs_with_rpo(quickstart_fast, tmp_path, monkeypatch):
    # the fast traffic is only validation prompts, so this run does not select (no prompt to hold out)
    facts = _fork_and_run(quickstart_fast, tmp_path / "c", monkeypatch, dpo_strategy="all_pairs_and_corrections",
                          dpo_rpo_alpha=0.5, dpo_select=None)
    data = facts["v2_train"]["data"]
    assert data["strategy"] == "all_pairs_and_corrections" and data["project"] == facts["feedback"]["project"]
    rows = [json.loads(x) for x in Path(data["path"]).read_text().splitlines()]
    corrections = [r for r in rows if r["source"] == "corrections"]
    assert corrections and len(corrections) < len(rows)  # all_pairs' rows and the correction pairs
    assert all(r["chosen_response_id"] is None and r["rejected_response_id"] for r in corrections)
    run = Path(facts["v2_train"]["run_dir"])
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["recipe"]["dpo"]["rpo_alpha"] == 0.5
    assert manifest["recipe"]["data"]["train"] == data["path"]
    train = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert any("nll_chosen" in r for r in train if r.get("kind", "train") == "train")
    assert facts["eval_v2"]["vs_v1"]["rougeL"]["p_value"] is not None


def test_selection_prompts_are_held_out_of_v2s_own_export(quickstart_fast, tmp_path):
    """With dpo_select, pairs on validation prompts (the selection split) are not trained on."""
    from llmops.loop.quickstart import Quickstart
    from llmops.loop.settings import FAST
    from llmops.data import load_records

    held = [r["prompt"] for r in load_records("builtin:docstrings", split="validation")]
    path = tmp_path / "prefs.jsonl"
    path.write_text("".join(json.dumps({"prompt": p, "chosen": "a", "rejected": "b", "source": s}) + "\n"
                            for p, s in ((held[0], "corrections"), ("other", "corrections"), ("x", "ratings"))))
    q = Quickstart(tmp_path / "q", FAST)
    got = q._without_selection_prompts(path)
    assert got["dropped_selection_prompt_rows"] == 1 and got["n_rows"] == 2
    assert got["by_source"] == {"corrections": 1, "ratings": 1}
    assert [json.loads(x)["prompt"] for x in Path(got["path"]).read_text().splitlines()] == ["other", "x"]


def test_sft_control_continues_v1_on_its_own_data_without_feedback(quickstart_fast, tmp_path, monkeypatch):
    facts = _fork_and_run(quickstart_fast, tmp_path / "s", monkeypatch, improve="sft_control")
    assert facts["v2_train"]["data"]["feedback"] is False
    manifest = json.loads((Path(facts["v2_train"]["run_dir"]) / "manifest.json").read_text())
    recipe = manifest["recipe"]
    assert recipe["recipe"] == "sft" and recipe["data"]["train"] == "builtin:docstrings"
    assert recipe["model"]["adapter"] == "registry:docs/1"  # continues v1
    assert recipe["train"]["max_steps"] == facts["settings"]["dpo_steps"]
    assert recipe["train"]["lr"] == facts["settings"]["dpo_lr"]
    assert manifest["selection"]["metric"] == "eval_gen_rougeL"


def test_improve_dpo_corrections_trains_on_pairs_and_corrections_off_the_selection_prompts(
        quickstart_fast, tmp_path, monkeypatch):
    """improve=dpo_corrections: DPO + NLL (corrections_rpo_alpha) on all_pairs_and_corrections, with the
    prompts the selection generates on held out of the training pairs; v2 still selected on validation."""
    facts = _fork_and_run(quickstart_fast, tmp_path / "dc", monkeypatch, improve="dpo_corrections")
    assert "v2_dpo_corrections" in [t["stage"] for t in facts["timings"]]
    data = facts["v2_train"]["data"]
    assert data["strategy"] == "all_pairs_and_corrections" and data["dropped_selection_prompt_rows"] > 0
    assert data["by_source"].get("corrections", 0) > 0
    from llmops.data import load_records

    validation = load_records("builtin:docstrings", split="validation")
    held = {r["prompt"] for r in validation[:facts["settings"]["select_prompts"]]}
    rows = [json.loads(x) for x in Path(data["path"]).read_text().splitlines()]
    assert rows and not held & {r["prompt"] for r in rows}
    manifest = json.loads((Path(facts["v2_train"]["run_dir"]) / "manifest.json").read_text())
    assert manifest["recipe"]["dpo"]["rpo_alpha"] == facts["settings"]["corrections_rpo_alpha"] == 1.0
    assert manifest["selection"]["metric"] == "eval_gen_rougeL"
    assert facts["eval_v2"]["vs_v1"]["rougeL"]["p_value"] is not None

"""Model cards: Hugging Face format, kept current as evaluations attach and aliases move."""

from __future__ import annotations

from huggingface_hub import ModelCard

from llmops.cli.main import main
from llmops.registry import api

from .helpers import make_eval_dir, make_model_dir

RECIPE = {"recipe": "sft", "description": "docstring summaries",
          "data": {"train": "builtin:docstrings"}, "lora": {"enabled": True, "r": 8, "alpha": 16},
          "train": {"lr": 0.0002, "max_steps": 60, "batch_size": 8, "seed": 0},
          "card": {"intended_use": "Summarise Python docstrings.", "limitations": "English only; tiny model.",
                   "license": "apache-2.0", "tags": ["summarization"]}}


def test_card_per_version_in_hf_format(sqlite_url, tmp_path, registry_root, capsys):
    lineage = {"base_model_ref": "builtin:tiny", "recipe": RECIPE, "recipe_hash": "c" * 64, "run_id": "run-1",
               "dataset_fingerprints": {"train": "a" * 64}, "feedback_snapshot_id": "snap-7",
               "training": {"steps_completed": 60, "wall_time_s": 12.5, "final_metrics": {"loss": 2.1}}}
    mv = api.register_version("docs", make_model_dir(tmp_path / "m"), lineage=lineage, tags={"recipe": "sft"},
                              db_url=sqlite_url)
    path = registry_root / "cards" / "docs" / "1" / "README.md"
    first = ModelCard.load(path)  # written at registration, beside (not inside) the read-only folder
    assert first.data.base_model == "builtin:tiny" and first.data.license == "apache-2.0"
    assert first.data.library_name == "peft" and "summarization" in first.data.tags
    assert "No evaluation attached yet" in first.text and "Not promoted yet" in first.text
    ev = make_eval_dir(tmp_path / "ev", "docstring_summary", {"rougeL": 0.145, "bleu": 3.2}, model_hash=mv.sha256)
    api.attach_eval("docs", 1, ev, db_url=sqlite_url)
    api.set_alias("docs", "production", 1, actor="alice", reason="first ship", db_url=sqlite_url)

    assert main(["registry", "card", "docs@production", "--db", sqlite_url]) == 0
    card = ModelCard(capsys.readouterr().out)
    results = {r.metric_type: r for r in card.data.eval_results}
    assert results["rougeL"].metric_value == 0.145 and results["rougeL"].dataset_name == "docstring_summary"
    assert results["rougeL"].metric_args == {"ci_low": 0.135, "ci_high": 0.155, "confidence": 0.95}
    assert card.data.datasets == ["builtin:docstrings"]
    for text in ("Summarise Python docstrings.", "English only; tiny model.", f"`{'c' * 64}`", "`snap-7`",
                 "LoRA r=8", "steps_completed**: 60", "became `production` — by local:alice (first ship)",
                 "| docstring_summary | rougeL | 0.145 | [0.135, 0.155] |"):
        assert text in card.text, text
    assert ModelCard.load(path).content == card.content  # the stored card is what the command prints
    out = tmp_path / "card.html"
    assert main(["registry", "card", "docs/1", "--html", "--out", str(out), "--db", sqlite_url]) == 0
    page = out.read_text()
    assert page.startswith("<!doctype html>") and "<table>" in page and "model-index" in page
    assert mv.sha256 == api.get_version("docs", 1, db_url=sqlite_url).sha256  # cards never touch the artifact

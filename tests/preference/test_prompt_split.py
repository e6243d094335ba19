"""Preference data is held out by prompt: no prompt is on both sides of the split."""

from __future__ import annotations

import json

from llmops.config.schema import DataSection
from llmops.data.splits import load_splits


def test_validation_split_groups_pairs_by_prompt(tmp_path):
    rows = [{"prompt": f"p{i % 20}", "chosen": f"good {j}", "rejected": f"bad {j}"} for j, i in enumerate(range(120))]
    path = tmp_path / "prefs.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    splits = load_splits(DataSection(train=str(path), validation_split=0.25), seed=3, recipe_name="dpo")
    train_prompts = {r["prompt"] for r in splits.train}
    val_prompts = {r["prompt"] for r in splits.validation}
    assert not train_prompts & val_prompts
    assert len(val_prompts) == 5 and len(splits.validation) == 30  # 25% of 20 prompts, 6 pairs each
    assert len(splits.train) + len(splits.validation) == 120


def test_prompt_completion_hold_out_is_per_record(tmp_path):
    rows = [{"prompt": "same", "completion": f"c{i}"} for i in range(20)]
    path = tmp_path / "sft.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    splits = load_splits(DataSection(train=str(path), validation_split=0.25), seed=3, recipe_name="sft")
    assert len(splits.validation) == 5 and len(splits.train) == 15

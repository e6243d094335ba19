"""RLOO honours data.validation_split: prompts held out by prompt, reward/KL validated, select_best works."""

from __future__ import annotations

import json

import pytest
from safetensors.torch import load_file

from llmops.config.loader import load_recipe
from preference.test_policy_hygiene import _task

REWARD = "rloo.reward_model=fn:preference.test_tasks:toy_reward"


def _prefs(tmp_path, n_prompts: int = 10, pairs: int = 3) -> str:
    rows = [{"prompt": f"Name a module for task {i}.", "chosen": f"m{j}", "rejected": "no"}
            for i in range(n_prompts) for j in range(pairs)]
    path = tmp_path / "prefs.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def test_validation_split_holds_out_whole_prompts(tmp_path):
    task = _task("recipes/rloo.yaml", tmp_path, f"data.train={_prefs(tmp_path)}", REWARD,
                 "data.validation_split=0.2", "data.limit=null")
    train = [e["prompt"] for e in task.train_examples()]
    held = [e["prompt"] for e in task.eval_examples()]
    assert len(set(held)) == 2 and len(held) == 6 and len(train) == 24  # 20% of 10 prompts, 3 pairs each
    assert not set(train) & set(held)
    assert "validation" in task.describe()["dataset_fingerprints"]


def test_validation_split_zero_means_no_validation(tmp_path):
    task = _task("recipes/rloo.yaml", tmp_path, f"data.train={_prefs(tmp_path)}", REWARD,
                 "data.validation_split=0", "data.limit=null")
    assert task.eval_examples() is None and len(task.train_examples()) == 30


def test_one_prompt_cannot_be_split(tmp_path):
    from llmops.errors import DataError

    with pytest.raises(DataError, match="validation_split=0.2 needs at least 2 distinct prompts"):
        _task("recipes/rloo.yaml", tmp_path, f"data.train={_prefs(tmp_path, n_prompts=1)}", REWARD,
              "data.validation_split=0.2", "data.limit=null")


def test_held_out_reward_and_kl_are_logged_and_select_best_keeps_the_best(tmp_path):
    from llmops.train import run

    loaded = load_recipe("recipes/rloo.yaml", [
        f"output.dir={tmp_path / 'run'}", f"data.train={_prefs(tmp_path)}", REWARD, "data.validation_split=0.2",
        "data.limit=null", "train.max_steps=4", "train.eval_every=2", "train.batch_size=2", "rloo.k=2",
        "rloo.max_new_tokens=6", "data.max_length=40", "train.lr=3e-3", "train.select_best=eval_reward",
    ])
    result = run(loaded)
    evals = [r for r in map(json.loads, (result.run_dir / "metrics.jsonl").read_text().splitlines())
             if r["kind"] == "eval"]
    assert [e["step"] for e in evals] == [0, 2, 4]
    assert all(e["eval_responses"] == 12 and "eval_reward" in e and "eval_kl" in e for e in evals)
    assert evals[0]["eval_kl"] == pytest.approx(0.0, abs=1e-6)  # LoRA starts as the reference
    best = max(evals, key=lambda e: e["eval_reward"])
    selection = json.loads((result.run_dir / "manifest.json").read_text())["selection"]
    assert selection["metric"] == "eval_reward" and selection["best_step"] == best["step"]
    kept = load_file(result.run_dir / "best" / "trainable.safetensors")
    final = load_file(result.final_dir / "adapter_model.safetensors")
    assert len(kept) == len(final) and kept

"""Reward models, DPO and distillation on every architecture family.

The reward head (`*ForSequenceClassification`) must exist, train with LoRA on the
default targets (every linear layer but the new head, which is trained in full) and
reload with plain transformers giving the same scores; DPO trains a LoRA policy against
the frozen base; distillation works between two models of one family (same vocabulary)
and is refused across families (different vocabularies).
"""

from __future__ import annotations

import json

import pytest
import torch

from archs.conftest import ALL
from archs.matrix import LORA, recipe, run, sample_batch


@pytest.mark.parametrize("family", ALL)
def test_reward_model_lora_trains_and_reloads_with_plain_transformers(family, family_model, family_data, tmp_path):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from llmops.preference.reward_model import load_reward_model, sequence_scores

    base = family_model(family)
    result = run(tmp_path, recipe("reward", family, base, family_data["pref"], tmp_path / "rm", lora=LORA))
    final = result.final_dir
    plain, info = AutoModelForSequenceClassification.from_pretrained(str(final), output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"], info
    assert plain.config.num_labels == 1
    tokenizer = AutoTokenizer.from_pretrained(str(final))
    assert plain.config.pad_token_id == (tokenizer.pad_token_id if tokenizer.pad_token_id is not None
                                         else tokenizer.eos_token_id)
    batch = sample_batch(tokenizer)
    ours = load_reward_model(str(final)).eval()
    with torch.no_grad():
        a, b = sequence_scores(plain.eval(), **batch), sequence_scores(ours, **batch)
    torch.testing.assert_close(a, b)
    assert torch.isfinite(a).all() and a.std() > 0
    manifest = json.loads((result.run_dir / "manifest.json").read_text())
    assert manifest["final_metrics"]["pairs"] > 0


@pytest.mark.parametrize("family", ALL)
def test_dpo_lora_moves_the_policy(family, family_model, family_data, tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    base = family_model(family)
    result = run(tmp_path, recipe("dpo", family, base, family_data["pref"], tmp_path / "dpo", lora=LORA,
                                  train={"lr": 2e-2}))
    metrics = [json.loads(line) for line in (result.run_dir / "metrics.jsonl").read_text().splitlines()]
    train = [m for m in metrics if m["kind"] == "train"]
    assert len(train) == 2 and all(m["loss"] == m["loss"] for m in train)
    # first step: policy == reference, so the sigmoid loss is exactly log 2
    assert train[0]["loss"] == pytest.approx(0.693147, abs=1e-4)
    tokenizer = AutoTokenizer.from_pretrained(str(result.final_dir))
    batch = sample_batch(tokenizer)
    plain = AutoModelForCausalLM.from_pretrained(str(base)).eval()
    with torch.no_grad():
        before = plain(**batch).logits
        after = PeftModel.from_pretrained(plain, str(result.final_dir)).eval()(**batch).logits
    assert not torch.allclose(before, after, atol=1e-6)


@pytest.mark.parametrize("family", ALL)
def test_distill_within_a_family(family, family_model, family_data, tmp_path):
    from transformers import AutoModelForCausalLM

    student, teacher = family_model(family), family_model(family, seed=1)
    result = run(tmp_path, recipe("distill", family, student, family_data["sft"], tmp_path / "kd",
                                  distill={"teacher": str(teacher), "alpha": 1.0}))
    model, info = AutoModelForCausalLM.from_pretrained(str(result.final_dir), output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"]
    train = [json.loads(x) for x in (result.run_dir / "metrics.jsonl").read_text().splitlines()]
    losses = [m["loss"] for m in train if m["kind"] == "train"]
    assert len(losses) == 2 and losses[1] < losses[0]  # KL to the teacher falls


def test_distill_across_families_is_refused(family_model, family_data, tmp_path):
    from llmops.errors import ConfigError

    with pytest.raises(ConfigError, match="share a vocabulary"):
        run(tmp_path, recipe("distill", "qwen2", family_model("qwen2"), family_data["sft"], tmp_path / "kd",
                             distill={"teacher": str(family_model("llama"))}))

"""The DPO/RLOO reference is the frozen *starting* policy — the SFT adapter, not the bare base."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from llmops.config.schema import Recipe
from llmops.models.loading import load_causal_lm
from llmops.preference.logps import sequence_logps
from llmops.preference.reference import REF_ADAPTER, ReferencePolicy
from llmops.train.modeling import freeze, load_trainable_causal_lm

from .helpers import tiny_llama, toy_pair_batch


@pytest.fixture(scope="module")
def base_and_sft(tmp_path_factory) -> tuple[Path, Path]:
    """A random base model dir and an 'SFT' LoRA adapter on it with non-zero weights."""
    from peft import LoraConfig, get_peft_model

    root = tmp_path_factory.mktemp("sft")
    base = tiny_llama(seed=0)
    base.save_pretrained(root / "base")
    peft_model = get_peft_model(
        tiny_llama(seed=0), LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM")
    )
    torch.manual_seed(1)
    with torch.no_grad():
        for name, p in peft_model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.5)  # an adapter that actually changes the model
    peft_model.save_pretrained(root / "sft")
    return root / "base", root / "sft"


def _recipe(base: Path, adapter: Path | None, lora: bool) -> Recipe:
    return Recipe.model_validate(
        {
            "recipe": "dpo",
            "model": {"base": str(base), "adapter": str(adapter) if adapter else None},
            "lora": {"enabled": lora, "r": 4, "target_modules": ["q_proj", "v_proj"], "dropout": 0.0},
            "data": {"train": "unused.jsonl"},
        }
    )


def _logps(model, batch):
    with torch.no_grad():
        return sequence_logps(model.eval(), batch)[0]


@pytest.mark.parametrize("lora", [True, False], ids=["continue-lora", "full-from-merged-sft"])
def test_reference_from_sft_adapter_is_the_sft_model(base_and_sft, lora):
    base_dir, sft_dir = base_and_sft
    batch = toy_pair_batch(n_pairs=2)
    sft_logps = _logps(load_causal_lm(str(base_dir), adapter=str(sft_dir)), batch)
    base_logps = _logps(load_causal_lm(str(base_dir)), batch)
    assert (sft_logps - base_logps).abs().max() > 1e-2  # the adapter matters

    recipe = _recipe(base_dir, sft_dir, lora)
    policy = load_trainable_causal_lm(recipe)
    ref = ReferencePolicy(recipe, policy, freeze)
    assert ref.kind == ("ref_adapter" if lora else "copy")
    torch.testing.assert_close(ref.logps(policy, batch)[0], sft_logps, atol=1e-5, rtol=0)

    # Train the policy a little: the reference must not move, the policy must.
    policy.train()
    opt = torch.optim.SGD([p for p in policy.parameters() if p.requires_grad], lr=0.5)
    for _ in range(2):
        opt.zero_grad()
        (-sequence_logps(policy, batch)[0].sum()).backward()
        opt.step()
    assert (_logps(policy, batch) - sft_logps).abs().max() > 1e-3
    torch.testing.assert_close(ref.logps(policy, batch)[0], sft_logps, atol=1e-5, rtol=0)
    trainable = {n for n, p in policy.named_parameters() if p.requires_grad}
    assert trainable and not any(f".{REF_ADAPTER}." in n for n in trainable)
    if lora:
        assert any(".default." in n for n in trainable)  # switching adapters left the policy trainable
        ref.before_save(policy)
        assert REF_ADAPTER not in policy.peft_config


def test_fresh_lora_reference_is_the_base(base_and_sft):
    base_dir, _ = base_and_sft
    batch = toy_pair_batch(n_pairs=2)
    recipe = _recipe(base_dir, None, lora=True)
    policy = load_trainable_causal_lm(recipe)
    with torch.no_grad():
        for name, p in policy.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.5)  # as if trained for a while
    ref = ReferencePolicy(recipe, policy, freeze)
    assert ref.kind == "disabled_adapter"
    base_logps = _logps(load_causal_lm(str(base_dir)), batch)
    torch.testing.assert_close(ref.logps(policy, batch)[0], base_logps, atol=1e-5, rtol=0)
    assert (_logps(policy, batch) - base_logps).abs().max() > 1e-3

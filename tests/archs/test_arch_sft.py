"""SFT on every architecture family: LoRA (default all-linear targets) and full, merge, reload, generate.

Each test trains 2 steps of a tiny random model and checks what a user does next with
``final/``: load it with plain transformers/peft, merge the adapter, generate through
llmops' eval backend, and find the family's tokens and chat template intact.
"""

from __future__ import annotations

import json

import pytest
import torch

from archs.conftest import ALL
from archs.families import FAMILIES
from archs.matrix import LORA, linear_names, real_logits, recipe, run, sample_batch


@pytest.mark.parametrize("family", ALL)
def test_sft_lora_default_targets_merge_reload_and_generate(family, family_model, family_data, tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    base = family_model(family)
    out = tmp_path / "lora"
    result = run(tmp_path, recipe("sft", family, base, family_data["sft"], out, lora=LORA,
                                  output={"save_merged": True}))
    final = result.final_dir
    assert result.metrics["train_loss"] == result.metrics["train_loss"]  # not NaN

    # the default adapts every Linear/Conv1D layer but the LM head (GPT-2: c_attn/c_proj/c_fc Conv1D)
    plain = AutoModelForCausalLM.from_pretrained(str(base))
    expected = linear_names(plain, {plain.get_output_embeddings()})
    adapter_config = json.loads((final / "adapter_config.json").read_text())
    assert set(adapter_config["target_modules"]) == expected, family
    assert len(expected) >= 4 * 2  # attention and MLP projections of both layers

    tokenizer = AutoTokenizer.from_pretrained(str(final))
    fam = FAMILIES[family]
    assert tokenizer.eos_token == fam.eos and (tokenizer.pad_token == fam.pad if fam.pad else True)
    assert (tokenizer.chat_template or None) == fam.template

    batch = sample_batch(tokenizer)
    with_adapter = PeftModel.from_pretrained(plain, str(final)).eval()
    merged = AutoModelForCausalLM.from_pretrained(str(final / "merged")).eval()
    adapted, merged_logits = real_logits(with_adapter, batch), real_logits(merged, batch)
    base_logits = real_logits(AutoModelForCausalLM.from_pretrained(str(base)).eval(), batch)
    assert not torch.allclose(adapted, base_logits, atol=1e-6), "training changed nothing"
    torch.testing.assert_close(merged_logits, adapted, atol=2e-5, rtol=1e-4)

    # eval generation through llmops (adapter dir -> base + adapter) equals plain transformers on merged/
    from llmops.eval.backends import GenerationParams, Prompt, load_backend

    text = "sort items into order"
    if fam.chat_template:
        text = tokenizer.apply_chat_template([{"role": "user", "content": text}], tokenize=False,
                                             add_generation_prompt=True)
    backend = load_backend("hf", str(final), dtype="float32", device="cpu", batch_size=2)
    try:
        ours = backend.generate([Prompt(text, add_special_tokens=False)], GenerationParams(max_new_tokens=6))[0]
    finally:
        backend.close()
    ids = tokenizer(text, add_special_tokens=False, return_tensors="pt")
    with torch.no_grad():
        theirs = merged.generate(**ids, max_new_tokens=6, do_sample=False,
                                 pad_token_id=tokenizer.pad_token_id or tokenizer.eos_token_id)
    expected_tokens = theirs[0, ids["input_ids"].shape[1]:].tolist()
    eos = set(backend.eos_ids)
    expected_tokens = expected_tokens[: next((i + 1 for i, t in enumerate(expected_tokens) if t in eos), None)]
    assert ours.token_ids[: len(expected_tokens)] == expected_tokens


@pytest.mark.parametrize("family", ALL)
def test_sft_full_reloads_with_plain_transformers(family, family_model, family_data, tmp_path):
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    base = family_model(family)
    result = run(tmp_path, recipe("sft", family, base, family_data["sft"], tmp_path / "full"))
    model, info = AutoModelForCausalLM.from_pretrained(str(result.final_dir), output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"], info
    before, after = load_file(base / "model.safetensors"), load_file(result.final_dir / "model.safetensors")
    assert before.keys() == after.keys()
    assert any(not before[k].equal(after[k]) for k in before), "full SFT changed no weight"
    saved_config = json.loads((result.final_dir / "config.json").read_text())
    base_config = json.loads((base / "config.json").read_text())
    for key in ("model_type", "tie_word_embeddings", "eos_token_id", "pad_token_id", "vocab_size"):
        assert saved_config.get(key) == base_config.get(key), key
    assert saved_config.get("use_cache", True) is True  # training switched it off; inference wants it

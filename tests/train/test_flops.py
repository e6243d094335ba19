"""The MFU formula: hand-computed FLOPs for a tiny shape, and the counts read off a real model."""

from __future__ import annotations

import pytest

from llmops.train.flops import ModelShape, mfu, peak_bf16_flops, training_flops


def test_training_flops_by_hand():
    shape = ModelShape(body_params=1000, layers=2, hidden=4, vocab=10)
    # one sample of 3 tokens: 3 * (6000 + 240) + 6 * 2 * 4 * 3 * 4
    assert training_flops(shape, [3]) == 3 * (6 * 1000 + 6 * 10 * 4) + 6 * 2 * 4 * 3 * 4 == 19296
    # packing two samples is not one long sample: attention stays within each
    assert training_flops(shape, [3, 3]) == 2 * 19296 < training_flops(shape, [6])
    assert training_flops(shape, []) == 0


def test_mfu_and_peaks():
    assert mfu(989e12, 2.0, 989e12) == pytest.approx(0.5)
    assert peak_bf16_flops("NVIDIA H200") == 989e12 and peak_bf16_flops("Tesla T4") is None
    with pytest.raises(ValueError):
        mfu(1.0, 0.0, 1.0)


def test_shape_of_a_llama_counts_body_and_head_separately():
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=1, tie_word_embeddings=False)
    model = LlamaForCausalLM(config)
    shape = ModelShape.of(model)
    total = sum(p.numel() for p in model.parameters())
    assert shape.body_params == total - 2 * 64 * 16  # embedding and untied head excluded
    assert (shape.layers, shape.hidden, shape.vocab) == (2, 16, 64)
    # per layer: q (16x16) + k, v (16x8 each) + o (16x16) + mlp 3 x (16x32) + 2 norms (16), plus the final norm
    assert shape.body_params == 2 * (256 + 128 + 128 + 256 + 3 * 512 + 32) + 16

    from peft import LoraConfig, get_peft_model

    lora = get_peft_model(model, LoraConfig(r=2, target_modules=["q_proj"]))
    assert ModelShape.of(lora) == shape  # LoRA matrices do not change the model FLOPs

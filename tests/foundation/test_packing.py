"""Packing: a packed row's logits equal each sample's logits run alone (fp32, 1e-5)."""

from __future__ import annotations

import pytest
import torch

from llmops.data import IGNORE, PackedCollator, build_sft_examples, pack_examples


def _random_llama(impl: str):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(
        vocab_size=4096, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, attn_implementation=impl,
    )
    return LlamaForCausalLM(cfg).eval()


@pytest.fixture(scope="module")
def examples(tokenizer):
    records = [
        {"prompt": "Return the sum of a and b.", "completion": "Add."},
        {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello there."}]},
        {"prompt": "Open a file and read all of its lines into memory.", "completion": "Read lines."},
        {"prompt": "x", "completion": "y"},
    ]
    return build_sft_examples(records, tokenizer, 128)[0]


def test_pack_examples_layout(examples):
    rows = pack_examples(examples, 64)
    assert sum(len(r["seq_lens"]) for r in rows) == len(examples)
    assert all(len(r["input_ids"]) <= 64 for r in rows)
    flat = [ex["input_ids"] for ex in examples]
    assert [tid for r in rows for tid in r["input_ids"]] == [t for ids in flat for t in ids]  # order kept
    for r in rows:
        start = 0
        for n in r["seq_lens"]:
            assert r["position_ids"][start : start + n] == list(range(n))
            assert r["labels"][start] == IGNORE  # never predicted across the boundary
            start += n


@pytest.mark.parametrize("impl", ["sdpa", "eager"])
def test_packed_logits_equal_unpacked(examples, tokenizer, impl):
    model = _random_llama(impl)
    rows = pack_examples(examples, 10_000)  # everything in one row, plus a padded second row
    assert len(rows) == 1 and len(rows[0]["seq_lens"]) == len(examples)
    short = pack_examples(examples[:1], 10_000)[0]
    batch = PackedCollator(tokenizer.pad_token_id)([rows[0], short])
    assert batch["attention_mask"].shape[1] == 1 and batch["attention_mask"].ndim == 4
    with torch.no_grad():
        packed = model(**{k: v for k, v in batch.items() if k != "labels"}).logits
        start = 0
        for ex in examples:
            alone = model(input_ids=torch.tensor([ex["input_ids"]])).logits[0]
            n = len(ex["input_ids"])
            assert torch.allclose(packed[0, start : start + n], alone, atol=1e-5, rtol=0), impl
            start += n
        first = model(input_ids=torch.tensor([examples[0]["input_ids"]])).logits[0]
        n0 = len(examples[0]["input_ids"])
        assert torch.allclose(packed[1, :n0], first, atol=1e-5, rtol=0)


def test_position_ids_mode_isolates_with_use_cache_false(examples, tokenizer):
    model = _random_llama("sdpa")
    row = pack_examples(examples, 10_000)[0]
    batch = PackedCollator(tokenizer.pad_token_id, mask="position_ids")([row])
    assert "attention_mask" not in batch
    with torch.no_grad():
        packed = model(input_ids=batch["input_ids"], position_ids=batch["position_ids"], use_cache=False).logits
        last = examples[-1]["input_ids"]
        alone = model(input_ids=torch.tensor([last])).logits[0]
    assert torch.allclose(packed[0, -len(last):], alone, atol=1e-5, rtol=0)


def test_packed_loss_equals_sum_of_per_sample_losses(examples, tokenizer):
    model = _random_llama("sdpa")
    batch = PackedCollator(tokenizer.pad_token_id)(pack_examples(examples, 10_000))
    with torch.no_grad():
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                       position_ids=batch["position_ids"]).logits
        packed_sum = torch.nn.functional.cross_entropy(
            logits[0, :-1], batch["labels"][0, 1:], ignore_index=IGNORE, reduction="sum")
        alone_sum = 0.0
        for ex in examples:
            lg = model(input_ids=torch.tensor([ex["input_ids"]])).logits[0]
            alone_sum += torch.nn.functional.cross_entropy(
                lg[:-1], torch.tensor(ex["labels"][1:]), ignore_index=IGNORE, reduction="sum").item()
    assert abs(packed_sum.item() - alone_sum) < 1e-3

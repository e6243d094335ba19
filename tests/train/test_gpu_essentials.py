"""GPU essentials that can be checked on CPU: padding-free packing, mask dtype, AdamW kernel,
compile, output dtype, and clear refusals (QLoRA and flash-attention without CUDA)."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from llmops.config.schema import Recipe, TrainSection
from llmops.data import PackedCollator, pack_examples
from llmops.errors import ConfigError
from llmops.train import gpu
from llmops.train.engine import Engine
from llmops.train.tasks.sft import packed_collator
from train.helpers import load, sft_recipe


@pytest.fixture(scope="module")
def tiny():
    from llmops.models.loading import load_causal_lm

    return load_causal_lm("builtin:tiny").eval()


def _rows(n: int = 5, length: int = 48):
    g = torch.Generator().manual_seed(0)
    examples = []
    for i in range(n):
        ids = torch.randint(5, 4000, (int(torch.randint(6, 20, (1,), generator=g)),), generator=g).tolist()
        examples.append({"input_ids": ids, "labels": ids})
    return examples, pack_examples(examples, length)


def test_padding_free_packing_equals_the_4d_mask_and_unpacked_samples(tiny):
    examples, rows = _rows()
    assert len(rows) < len(examples)  # really packed
    assert gpu.packing_mask(tiny) == "position_ids"
    free = PackedCollator(0, mask="position_ids")(rows)
    dense = PackedCollator(0, mask="4d")(rows)
    assert "attention_mask" not in free  # no L x L mask built by us
    with torch.no_grad():
        a = tiny(input_ids=free["input_ids"], position_ids=free["position_ids"], use_cache=False).logits
        b = tiny(**{k: dense[k] for k in ("input_ids", "position_ids", "attention_mask")}, use_cache=False).logits
        # the second sample of row 0 on its own
        second_sample = examples[1]["input_ids"]
        alone = tiny(input_ids=torch.tensor([second_sample]), use_cache=False).logits
    mask = free["labels"] != -100
    assert (a - b).abs()[mask].max() < 1e-4
    assert len(rows[0]["seq_lens"]) >= 2
    second = slice(rows[0]["seq_lens"][0], rows[0]["seq_lens"][0] + len(second_sample))
    assert (a[0, second] - alone[0]).abs().max() < 1e-4
    # without isolation the second sample would see the first: the comparison can fail
    with torch.no_grad():
        leaky = tiny(input_ids=free["input_ids"][:1], use_cache=False).logits
    assert (leaky[0, second] - alone[0]).abs().max() > 1e-3


def test_models_outside_the_attention_interface_get_the_dense_mask_in_their_dtype(tiny):
    class Legacy(torch.nn.Module):
        _supports_attention_backend = False

        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(2, dtype=torch.bfloat16))

    collate = packed_collator(0, Legacy())
    assert collate.mask == "4d" and collate.mask_dtype == torch.bfloat16
    _, rows = _rows()
    assert collate(rows)["attention_mask"].dtype == torch.bfloat16  # never an fp32 mask with bf16 attention
    assert packed_collator(0, tiny).mask == "position_ids"


def test_adamw_kernel_choice():
    cpu = [torch.nn.Parameter(torch.zeros(2))]
    assert gpu.adamw_kwargs(TrainSection(), cpu) == {}  # torch's default on CPU, like Trainer's adamw_torch
    assert gpu.adamw_kwargs(TrainSection(optimizer_impl="foreach"), cpu) == {"foreach": True}
    assert gpu.adamw_kwargs(TrainSection(optimizer_impl="fused"), cpu) == {"fused": True}
    assert gpu.adamw_kwargs(TrainSection(optimizer_impl="for_loop"), cpu) == {"foreach": False}


def test_qlora_and_flash_attention_are_refused_on_cpu(tmp_path):
    with pytest.raises(ValueError, match="lora.enabled"):
        Recipe.model_validate({"recipe": "sft", "data": {"train": "x"}, "model": {"load_in_4bit": True}})
    recipe = Recipe.model_validate(
        {"recipe": "sft", "data": {"train": "x"}, "model": {"load_in_4bit": True}, "lora": {"enabled": True}}
    )
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="QLoRA.*CUDA"):
            gpu.model_load_kwargs(recipe)
        flash = Recipe.model_validate({"recipe": "sft", "data": {"train": "x"}, "model": {"attn_implementation": "flash_attention_2"}})
        with pytest.raises(ConfigError, match="flash_attn"):
            gpu.model_load_kwargs(flash)


def test_compile_is_in_place_and_keeps_parameter_names():
    model = torch.nn.Sequential(torch.nn.Linear(2, 2))
    names = [n for n, _ in model.named_parameters()]
    assert gpu.maybe_compile(model, TrainSection(compile=True)) is model
    assert model._compiled_call_impl is not None  # forward goes through torch.compile (lazily, on first call)
    assert [n for n, _ in model.named_parameters()] == names and list(model.state_dict()) == names
    assert gpu.maybe_compile(torch.nn.Linear(1, 1), TrainSection())._compiled_call_impl is None


def test_packed_fused_run_saves_final_in_output_dtype(tmp_path, data_file):
    recipe = sft_recipe(
        data_file, tmp_path / "run",
        data={"packing": True},
        train={"max_steps": 2, "batch_size": 2, "optimizer_impl": "fused"},
        output={"dtype": "bfloat16"},
    )
    result = Engine(load(tmp_path, recipe)).run()
    weights = load_file(result.final_dir / "model.safetensors")
    assert {t.dtype for t in weights.values()} == {torch.bfloat16}
    assert result.metrics["train_loss"] == result.metrics["train_loss"]  # not NaN


def test_attention_kernel_is_only_forced_when_asked():
    base = {"recipe": "sft", "data": {"train": "x"}}
    assert "attn_implementation" not in gpu.model_load_kwargs(Recipe.model_validate(base))  # Gemma 2 needs eager
    eager = Recipe.model_validate({**base, "model": {"attn_implementation": "eager"}})
    assert gpu.model_load_kwargs(eager)["attn_implementation"] == "eager"

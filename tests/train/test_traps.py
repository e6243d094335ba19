"""Silent traps that are now errors or fixed: fp16 on fp16, ignored lora keys, hub files, threads, tokenising once."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from llmops.config.schema import LoraSection, Recipe
from llmops.errors import ConfigError
from train.helpers import REPO, load, sft_recipe, subprocess_env


def test_float16_weights_with_fp16_mixed_precision_are_refused_at_validation():
    base = {"recipe": "sft", "data": {"train": "x.jsonl"}}
    with pytest.raises(ValueError, match="model.dtype: float16 with train.mixed_precision: fp16"):
        Recipe.model_validate({**base, "model": {"dtype": "float16"}, "train": {"mixed_precision": "fp16"}})
    Recipe.model_validate({**base, "model": {"dtype": "float32"}, "train": {"mixed_precision": "fp16"}})
    Recipe.model_validate({**base, "model": {"dtype": "float16"}, "train": {"mixed_precision": "no"}})


def test_lora_keys_that_a_continued_adapter_ignores_are_reported(tmp_path):
    from llmops.train.lora_keys import check_continued_adapter, ignored_lora_keys

    saved = {"r": 8, "lora_alpha": 16, "lora_dropout": 0.05, "target_modules": ["v_proj", "q_proj"], "use_dora": False}
    (tmp_path / "adapter_config.json").write_text(json.dumps(saved))
    # defaults (not set in the recipe) are simply taken from the adapter; equal values are fine
    check_continued_adapter(LoraSection(enabled=True), tmp_path)
    check_continued_adapter(LoraSection(enabled=True, r=8, target_modules=["q_proj", "v_proj"]), tmp_path)
    lora = LoraSection(enabled=True, r=16, alpha=16, target_modules=["q_proj"])
    assert ignored_lora_keys(lora, saved) == [
        "lora.r: 16 (adapter has 8)", "lora.target_modules: ['q_proj'] (adapter has ['v_proj', 'q_proj'])"
    ]
    with pytest.raises(ConfigError, match=r"lora.r: 16 \(adapter has 8\)"):
        check_continued_adapter(lora, tmp_path)


def test_continuing_an_adapter_with_a_different_rank_fails_before_training(tmp_path, data_file):
    from llmops.train.engine import Engine

    first = Engine(load(tmp_path, sft_recipe(data_file, tmp_path / "a", lora={"enabled": True, "r": 4},
                                              train={"max_steps": 1}), "a.yaml")).run()
    again = sft_recipe(data_file, tmp_path / "b", lora={"enabled": True, "r": 8}, train={"max_steps": 1},
                       model={"base": "builtin:tiny", "adapter": str(first.final_dir)})
    with pytest.raises(ConfigError, match=r"lora.r: 8 \(adapter has 4\)"):
        Engine(load(tmp_path, again, "b.yaml")).run()


def test_hub_downloads_only_the_files_a_model_needs():
    from llmops.models.hub_files import needed_files

    repo = ["config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json", "tokenizer.model",
            "special_tokens_map.json", "chat_template.jinja", "model-00001-of-00002.safetensors",
            "model-00002-of-00002.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
            "pytorch_model.bin.index.json", "tf_model.h5", "flax_model.msgpack", "model.gguf", "README.md",
            "original/consolidated.00.pth", "original/params.json", "onnx/model.onnx", ".gitattributes",
            "configuration_custom.py", "training_args.bin"]
    assert needed_files(repo) == sorted([
        "config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json", "tokenizer.model",
        "special_tokens_map.json", "chat_template.jinja", "model-00001-of-00002.safetensors",
        "model-00002-of-00002.safetensors", "model.safetensors.index.json", "configuration_custom.py",
    ])
    # no safetensors: the PyTorch weights (and their index), never optimizer/training state
    assert needed_files(["config.json", "pytorch_model.bin", "optimizer.bin", "training_args.bin"]) == [
        "config.json", "pytorch_model.bin"]


@pytest.mark.parametrize(
    ("env", "cpus", "expected"),
    [
        ({}, 2, (2, "affinity")),
        ({"LOCAL_WORLD_SIZE": "2", "OMP_NUM_THREADS": "1"}, 8, (4, "affinity")),  # launcher's OMP=1 is not a choice
        ({"LOCAL_WORLD_SIZE": "4"}, 2, (1, "affinity")),
        ({"OMP_NUM_THREADS": "3"}, 8, (3, "OMP_NUM_THREADS")),
        ({"LLMOPS_THREADS": "5", "OMP_NUM_THREADS": "3"}, 8, (5, "--threads")),
    ],
)
def test_thread_plan(env, cpus, expected):
    from llmops.train.threads import plan_threads

    plan = plan_threads(env=env, cpus=cpus)
    assert (plan.threads, plan.source) == expected
    assert plan_threads(override=7, env=env, cpus=cpus).threads == 7
    with pytest.raises(ConfigError, match="positive integer"):
        plan_threads(env={"LLMOPS_THREADS": "0"}, cpus=cpus)


def test_threads_follow_the_affinity_mask_and_the_flag():
    """A process pinned to one CPU uses one thread; --threads wins; both are in the manifest path."""
    code = ("import os, json; from llmops.train.threads import configure_threads; import torch; "
            "p = configure_threads(); print(json.dumps([p.threads, p.source, p.cpus, torch.get_num_threads()]))")
    env = subprocess_env()
    env.pop("OMP_NUM_THREADS")
    env.pop("LLMOPS_THREADS")
    pinned = subprocess.run(["taskset", "-c", "0", sys.executable, "-c", code], env=env, capture_output=True,
                            text=True, cwd=REPO, check=True)
    assert json.loads(pinned.stdout.splitlines()[-1]) == [1, "affinity", 1, 1]
    env["LLMOPS_THREADS"] = "3"
    flagged = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd=REPO, check=True)
    assert json.loads(flagged.stdout.splitlines()[-1])[::3] == [3, 3]


def test_tokenised_once_then_read_from_the_cache(tmp_path, data_file, monkeypatch):
    """Rank 0 (first through main_process_first) tokenises; a later rank / --resume loads the cache."""
    import llmops.data as data_mod
    from llmops.models.loading import load_tokenizer
    from llmops.train.tasks.sft import SFTData

    calls = []
    real = data_mod.build_sft_examples
    monkeypatch.setattr(data_mod, "build_sft_examples", lambda *a, **k: calls.append(1) or real(*a, **k))
    recipe = load(tmp_path, sft_recipe(data_file, tmp_path / "run", data={"validation_split": 0.25})).recipe
    tok = load_tokenizer("builtin:tiny")
    first = SFTData.build(recipe, tok, cache_dir=tmp_path / "tokenized")
    assert len(calls) == 2  # train + validation
    second = SFTData.build(recipe, tok, cache_dir=tmp_path / "tokenized")
    assert len(calls) == 2 and second.train == first.train and second.validation == first.validation
    # a different setting is a different key: never a stale cache
    other = load(tmp_path, sft_recipe(data_file, tmp_path / "run", data={"validation_split": 0.25, "max_length": 32}),
                 "other.yaml").recipe
    SFTData.build(other, tok, cache_dir=tmp_path / "tokenized")
    assert len(calls) == 4 and len(list((tmp_path / "tokenized").glob("*.pkl"))) == 2

"""final/ artifacts: LoRA save/reload/merge parity, distillation end to end, shipped recipes."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import torch

from llmops.config import load_recipe
from llmops.errors import ConfigError
from llmops.models.loading import load_causal_lm, load_tokenizer
from llmops.train.engine import Engine
from llmops.train.modeling import load_trainable_causal_lm, save_causal_lm
from llmops.train.tasks.distill import check_same_vocabulary
from train.helpers import LLMOPS, REPO, load, sft_recipe, subprocess_env


def test_lora_save_reload_is_exact_and_merge_within_1e5(tmp_path, data_file):
    loaded = load(tmp_path, sft_recipe(data_file, tmp_path / "unused", lora={"enabled": True, "r": 4, "dropout": 0.0}))
    model = load_trainable_causal_lm(loaded.recipe).eval()
    torch.manual_seed(0)
    with torch.no_grad():  # a fresh adapter is a no-op (B = 0): give it real weights
        for name, param in model.named_parameters():
            if "lora_" in name:
                param.normal_(0, 0.05)
    tokenizer = load_tokenizer("builtin:tiny")
    ids = torch.tensor([tokenizer.encode("Summarise: open file and read bytes from stream")])
    with torch.no_grad():
        trained = model(input_ids=ids).logits
        base = model.get_base_model()
        with model.disable_adapter():
            untouched = model(input_ids=ids).logits
    assert (trained - untouched).abs().max() > 1e-3  # the adapter matters
    out = tmp_path / "final"
    summary = save_causal_lm(model, tokenizer, out, "builtin:tiny", is_main_process=True, save_merged=True)
    assert summary["kind"] == "lora" and (out / "adapter_model.safetensors").exists()
    assert json.loads((out / "llmops_model.json").read_text())["base_ref"] == "builtin:tiny"
    del base
    with torch.no_grad():
        reloaded = load_causal_lm(str(out)).eval()(input_ids=ids).logits
        merged = load_causal_lm(str(out / "merged")).eval()(input_ids=ids).logits
    assert torch.equal(reloaded, trained)
    assert (merged - trained).abs().max().item() < 1e-5


@pytest.mark.slow
def test_distillation_runs_and_reports_its_terms(tmp_path, data_file):
    out = tmp_path / "distill"
    recipe = sft_recipe(data_file, out, train={"max_steps": 2, "log_every": 1})
    recipe.update(recipe="distill", distill={"teacher": "builtin:tiny-teacher", "loss": "jsd", "alpha": 0.5})
    result = Engine(load(tmp_path, recipe)).run()
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    first = records[0]
    assert first["kd"] > 0 and first["ce"] > 0
    assert first["loss"] == pytest.approx(0.5 * first["kd"] + 0.5 * first["ce"], rel=1e-5)
    assert result.manifest["teacher_ref"] == "builtin:tiny-teacher" and len(result.manifest["teacher_hash"]) == 64
    assert (out / "final" / "model.safetensors").exists()


def test_teacher_with_another_vocabulary_is_a_clear_error():
    class Tok:
        def __init__(self, vocab):
            self.vocab = vocab

        def get_vocab(self):
            return self.vocab

    check_same_vocabulary(Tok({"a": 0, "b": 1}), Tok({"a": 0, "b": 1}), "s", "t")
    with pytest.raises(ConfigError, match="distill.teacher: t .*do not share a vocabulary"):
        check_same_vocabulary(Tok({"a": 0, "b": 1}), Tok({"a": 0, "c": 1}), "s", "t")


@pytest.mark.parametrize("name", ["sft_lora", "sft_full_bf16", "distill"])
def test_shipped_recipes_validate(name):
    loaded = load_recipe(REPO / "recipes" / f"{name}.yaml")
    assert loaded.recipe.data.train == "builtin:docstrings"
    assert loaded.recipe.train.max_steps <= 60


@pytest.mark.slow
def test_cli_trains_a_shipped_recipe_and_registers_it(tmp_path):
    env = subprocess_env()
    env["LLMOPS_DATABASE_URL"] = f"sqlite:///{tmp_path / 'llmops.db'}"
    env["LLMOPS_HOME"] = str(Path(env.get("LLMOPS_HOME", tmp_path)))
    out = tmp_path / "run"
    cmd = [
        *LLMOPS, "train", str(REPO / "recipes" / "sft_lora.yaml"), "train.max_steps=2", "train.batch_size=2",
        "train.grad_accum=1", "data.limit=40", f"output.dir={out}", "output.register_as=tiny-sft",
        "train.eval_every=0", "train.checkpoint_every=0", "data.validation_split=0",
    ]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout)
    assert summary["status"] == "completed" and summary["registered"] == "registry:tiny-sft/1"
    assert (out / "final" / "merged" / "model.safetensors").exists()
    from llmops.registry.api import get_version

    version = get_version("tiny-sft", version=1, db_url=env["LLMOPS_DATABASE_URL"])
    manifest = json.loads((out / "manifest.json").read_text())
    assert version.lineage["run_id"] == manifest["run_id"]
    assert version.lineage["recipe_hash"] == manifest["recipe_hash"]
    assert version.lineage["base_model_hash"] == manifest["base_model_hash"]
    assert version.lineage["dataset_fingerprints"] == manifest["dataset_fingerprints"]

    bad = subprocess.run([*LLMOPS, "train", str(REPO / "recipes" / "sft_lora.yaml"), "train.lr=-1"],
                         env=env, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "train.lr: must be > 0" in bad.stderr

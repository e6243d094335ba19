"""The engine on the tiny built-in model: over-fitting, exact accumulation, run outputs."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from safetensors.torch import load_file

from llmops.errors import ConfigError, UserError
from llmops.train.engine import Engine
from train.helpers import load, make_records, sft_recipe


def _fixed_batch_file(tmp_path):
    path = tmp_path / "four.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in make_records(4, seed=3)))
    return path


@pytest.mark.parametrize(
    "lora, lr",
    [({"enabled": False}, 3e-3), ({"enabled": True, "r": 16, "alpha": 32, "dropout": 0.0, "target_modules": "all-linear"}, 6e-3)],
    ids=["full", "lora"],
)
def test_a_fixed_batch_is_overfit(tmp_path, lora, lr):
    out = tmp_path / "run"
    recipe = sft_recipe(
        _fixed_batch_file(tmp_path), out, lora=lora,
        train={"max_steps": 30, "batch_size": 4, "lr": lr, "lr_scheduler": "constant", "log_every": 1},
    )
    result = Engine(load(tmp_path, recipe)).run()
    losses = [r["loss"] for r in map(json.loads, (out / "metrics.jsonl").read_text().splitlines()) if r["kind"] == "train"]
    assert len(losses) == 30
    assert losses[-1] <= 0.5 * losses[0], losses
    assert result.status == "completed"


def _window_grads(tmp_path, data_file, batch_size: int, grad_accum: int, mean_per_micro_batch: bool = False):
    recipe = sft_recipe(
        data_file, tmp_path / f"run-{batch_size}x{grad_accum}-{mean_per_micro_batch}",
        train={"batch_size": batch_size, "grad_accum": grad_accum, "max_grad_norm": None},
    )
    engine = Engine(load(tmp_path, recipe, name=f"r{batch_size}x{grad_accum}{mean_per_micro_batch}.yaml"))
    engine.setup()
    try:
        examples = list(engine.train_examples[:8])
        window = [engine.task.collate(examples[i : i + batch_size]) for i in range(0, 8, batch_size)]
        counts = [engine.task.count_units(b) for b in window]
        if mean_per_micro_batch:  # the pre-4.46 transformers bug, as a negative control
            for batch in window:
                out = engine.task.compute_loss(engine.model, batch)
                (out.loss_sum / out.n_units / grad_accum).backward()
        else:
            engine.forward_backward(window)
        grads = {n: p.grad.detach().clone() for n, p in engine.model.named_parameters() if p.grad is not None}
        return grads, counts
    finally:
        engine.cleanup()


def test_gradient_accumulation_equals_one_big_batch(tmp_path, data_file):
    big, big_counts = _window_grads(tmp_path, data_file, 8, 1)
    small, small_counts = _window_grads(tmp_path, data_file, 2, 4)
    assert sum(big_counts) == sum(small_counts)
    assert len(set(small_counts)) > 1, "micro-batches must have uneven supervised token counts"
    assert big.keys() == small.keys() and len(big) > 10
    worst = max((big[n] - small[n]).abs().max().item() for n in big)
    assert worst < 1e-5, worst
    naive, _ = _window_grads(tmp_path, data_file, 2, 4, mean_per_micro_batch=True)
    naive_worst = max((big[n] - naive[n]).abs().max().item() for n in big)
    assert naive_worst > 100 * max(worst, 1e-7), "the per-micro-batch mean should differ measurably"


def test_run_outputs_and_guards(tmp_path, data_file):
    out = tmp_path / "run"
    recipe = sft_recipe(
        data_file, out,
        data={"validation_split": 0.25},
        train={"max_steps": 4, "batch_size": 4, "log_every": 2, "eval_every": 2, "checkpoint_every": 2, "keep_last": 1},
        lora={"enabled": True},
    )
    loaded = load(tmp_path, recipe)
    result = Engine(loaded).run()
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "completed" and manifest["world_size"] == 1
    assert manifest["recipe_hash"] == loaded.hash and manifest["base_model_ref"] == "builtin:tiny"
    assert len(manifest["base_model_hash"]) == 64 and set(manifest["dataset_fingerprints"]) == {"train", "validation"}
    assert {"torch", "transformers", "peft", "accelerate"} <= set(manifest["versions"])
    assert manifest["tokens_per_s"] > 0 and manifest["wall_time_s"] > 0
    assert manifest["final_metrics"]["eval_loss"] == result.metrics["eval_loss"]
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in records if r["kind"] == "train"]
    assert [r["step"] for r in train] == [2, 4]
    for key in ("loss", "lr", "grad_norm", "tokens", "tokens_per_s", "peak_mem_mb"):
        assert all(isinstance(r[key], (int, float)) for r in train), key
    assert [r["step"] for r in records if r["kind"] == "eval"] == [0, 2, 4]
    assert [p.name for p in (out / "checkpoints").iterdir()] == ["step-2"]
    assert (out / "checkpoints" / "step-2" / "trainable_0.safetensors").exists()  # LoRA: adapter only
    assert not (out / "checkpoints" / "step-2" / "model.safetensors").exists()
    assert (out / "loss.png").stat().st_size > 1000
    sidecar = json.loads((out / "final" / "llmops_model.json").read_text())
    assert sidecar["base_ref"] == "builtin:tiny" and sidecar["run_id"] == manifest["run_id"]

    with pytest.raises(UserError, match="already holds a run"):
        Engine(loaded).run()
    changed = load(tmp_path, {**recipe, "train": {**recipe["train"], "lr": 5e-4}}, name="changed.yaml")
    with pytest.raises(ConfigError, match="train.lr"):
        Engine(changed, resume=True).run()
    # resuming a completed run is a no-op that returns it
    again = Engine(loaded, resume=True).run()
    assert again.status == "completed" and again.manifest["run_id"] == manifest["run_id"]


def test_full_bf16_packed_run_resumes_from_a_full_weight_checkpoint(tmp_path, data_file):
    """Full weights (tied embeddings) through accelerate's checkpoint, bf16 autocast, packing."""
    out = tmp_path / "full"
    recipe = sft_recipe(
        data_file, out,
        model={"base": "builtin:tiny", "gradient_checkpointing": True},
        data={"packing": True, "max_length": 96},
        train={"max_steps": 2, "batch_size": 2, "mixed_precision": "bf16", "checkpoint_every": 1, "keep_last": 1},
    )
    loaded = load(tmp_path, recipe)
    first = Engine(loaded).run()
    assert first.manifest["mixed_precision"] == "bf16"
    assert (out / "checkpoints" / "step-1" / "model.safetensors").exists()
    reference = {k: v.clone() for k, v in load_file(out / "final" / "model.safetensors").items()}

    # simulate a crash after step 1: the final artifact and the completed status are gone
    shutil.rmtree(out / "final")
    manifest = json.loads((out / "manifest.json").read_text())
    (out / "manifest.json").write_text(json.dumps({**manifest, "status": "running"}))
    again = Engine(loaded, resume=True).run()
    assert again.resumed_from_step == 1
    resumed = load_file(out / "final" / "model.safetensors")
    assert resumed.keys() == reference.keys()
    assert all(torch.equal(resumed[k], reference[k]) for k in reference)

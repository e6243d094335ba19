"""DeepSpeed takes the recipe's micro-batch, accumulation and clipping, not the launcher's.

DeepSpeed itself cannot run here (accelerate drops it on CPU), so this tests the
plumbing with the environment `accelerate launch --config_file
recipes/accelerate/deepspeed_zero2.yaml` exports; the GPU check runs it for real.
"""

from __future__ import annotations

import types

import pytest

from llmops.config.schema import Recipe
from llmops.errors import ConfigError
from llmops.train import accel

LAUNCHER_ENV = {  # what accelerate launch exports for deepspeed_zero2.yaml
    "ACCELERATE_USE_DEEPSPEED": "true",
    "ACCELERATE_DEEPSPEED_ZERO_STAGE": "2",
    "ACCELERATE_GRADIENT_ACCUMULATION_STEPS": "4",
    "ACCELERATE_GRADIENT_CLIPPING": "1.0",
}


def _recipe(**train) -> Recipe:
    return Recipe.model_validate(
        {"recipe": "sft", "data": {"train": "builtin:tasks"}, "train": {"batch_size": 3, "grad_accum": 2, **train}}
    )


@pytest.fixture
def launcher(monkeypatch):
    for key, value in LAUNCHER_ENV.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(accel, "has_accelerator_device", lambda: True)


def test_recipe_values_replace_the_launchers(launcher):
    recipe = _recipe(max_grad_norm=0.5)
    plugin = accel.recipe_deepspeed_plugin(recipe)
    config = accel.fill_deepspeed_config(plugin, recipe)
    assert config["train_micro_batch_size_per_gpu"] == 3  # was "auto": prepare() without a DataLoader refused it
    assert config["gradient_accumulation_steps"] == 2  # the launcher said 4
    assert config["gradient_clipping"] == 0.5
    assert config["zero_optimization"]["stage"] == 2


def test_no_clipping_is_zero_for_deepspeed(launcher):
    recipe = _recipe(max_grad_norm=None)
    assert accel.fill_deepspeed_config(accel.recipe_deepspeed_plugin(recipe), recipe)["gradient_clipping"] == 0.0


def test_a_mismatch_after_prepare_is_an_error(launcher):
    recipe = _recipe()
    plugin = accel.recipe_deepspeed_plugin(recipe)
    accel.fill_deepspeed_config(plugin, recipe)
    fake = types.SimpleNamespace(gradient_accumulation_steps=2, state=types.SimpleNamespace(deepspeed_plugin=plugin))
    accel.verify_accumulation(fake, recipe)
    plugin.deepspeed_config["gradient_accumulation_steps"] = 4
    with pytest.raises(RuntimeError, match="deepspeed uses 4 where the recipe says 2"):
        accel.verify_accumulation(fake, recipe)
    fake.gradient_accumulation_steps = 4
    with pytest.raises(RuntimeError, match="accelerate uses 4"):
        accel.verify_accumulation(fake, recipe)


def test_deepspeed_on_cpu_is_refused_not_silently_ddp(monkeypatch):
    for key, value in LAUNCHER_ENV.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(accel, "has_accelerator_device", lambda: False)
    monkeypatch.delenv("DS_ACCELERATOR", raising=False)
    with pytest.raises(ConfigError, match="DeepSpeed launch needs GPUs.*DS_ACCELERATOR=cpu"):
        accel.recipe_deepspeed_plugin(_recipe())
    monkeypatch.setenv("DS_ACCELERATOR", "cpu")  # DeepSpeed's own CPU accelerator: allowed
    assert accel.recipe_deepspeed_plugin(_recipe()) is not None


def test_unset_precision_takes_the_launchers(monkeypatch):
    monkeypatch.setenv("ACCELERATE_MIXED_PRECISION", "bf16")
    assert accel.effective_mixed_precision(None) == "bf16"
    assert accel.effective_mixed_precision("bf16") == "bf16"
    with pytest.raises(ConfigError, match="leave train.mixed_precision unset"):
        accel.effective_mixed_precision("fp16")
    monkeypatch.delenv("ACCELERATE_MIXED_PRECISION")
    assert accel.effective_mixed_precision(None) == "no"

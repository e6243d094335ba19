"""DPO/RLOO defaults that keep log-ratios exact: no dropout, samples that no generation config changes,
and log-probs from the same temperature-scaled logits the samples came from."""

from __future__ import annotations

import json

import pytest
import torch

from llmops.config.loader import load_recipe
from llmops.preference.logps import sequence_logps
from llmops.train.modeling import disable_dropout
from preference.helpers import tiny_llama, toy_pair_batch


def _task(recipe, tmp_path, *overrides):
    from llmops.train.tasks import build_task
    from llmops.train.task import TaskContext
    from llmops.train.modeling import resolve_recipe_models

    loaded = load_recipe(recipe, [f"output.dir={tmp_path / 'run'}", *overrides]).recipe
    task = build_task(loaded)

    class Acc:
        device = torch.device("cpu")
        num_processes, process_index, is_main_process = 1, 0, True
        distributed_type = "NO"

        @staticmethod
        def unwrap_model(model):
            return model

        @staticmethod
        def main_process_first():
            from contextlib import nullcontext

            return nullcontext()

    task.setup(TaskContext(recipe=loaded, accelerator=Acc(), run_dir=tmp_path, prepare_frozen=lambda m: m.eval(),
                           models=resolve_recipe_models(loaded)))
    return task


def _dropouts(model):
    return [m.p for m in model.modules() if isinstance(m, torch.nn.Dropout)]


@pytest.mark.parametrize("setting, expect_on", [("true", False), ("false", True)])
def test_dpo_disables_dropout_by_default(tmp_path, setting, expect_on):
    data = tmp_path / "p.jsonl"
    data.write_text("".join(json.dumps({"prompt": f"q{i}", "chosen": "yes it is", "rejected": "no"}) + "\n"
                            for i in range(4)))
    task = _task("recipes/dpo.yaml", tmp_path, f"data.train={data}", "lora.dropout=0.1",
                 f"dpo.disable_dropout={setting}", "data.validation_split=0")
    ps = _dropouts(task.model)
    assert ps and (any(p > 0 for p in ps) if expect_on else all(p == 0 for p in ps))


def test_disable_dropout_counts():
    model = torch.nn.Sequential(torch.nn.Dropout(0.2), torch.nn.Linear(2, 2), torch.nn.Dropout(0.0))
    assert disable_dropout(model) == 1 and _dropouts(model) == [0.0, 0.0]


def test_rloo_samples_ignore_the_models_generation_config(tmp_path):
    data = tmp_path / "p.jsonl"
    data.write_text("".join(json.dumps({"prompt": f"q{i}"}) + "\n" for i in range(4)))
    task = _task("recipes/rloo.yaml", tmp_path, f"data.train={data}", "rloo.temperature=0.7",
                 "rloo.reward_model=fn:preference.test_tasks:toy_reward", "data.limit=null")
    batch = task.collate_at(task.train_examples()[:2], position=0)

    def samples():
        return task.sample(task.model, batch)["input_ids"]

    clean = samples()
    assert torch.equal(samples(), clean)  # keyed noise: no seeding needed
    gc = task.model.generation_config  # a model's own defaults must not leak into on-policy samples
    gc.repetition_penalty, gc.no_repeat_ngram_size, gc.top_k, gc.min_new_tokens = 3.0, 1, 2, 5
    assert torch.equal(samples(), clean)
    assert not torch.equal(task.sample(task.model, task.collate_at(task.train_examples()[:2], position=1))["input_ids"],
                           clean)


def test_sequence_logps_uses_temperature_scaled_logits():
    model = tiny_llama(seed=1).eval()
    batch = toy_pair_batch(2)
    plain, _ = sequence_logps(model, batch)
    hot, _ = sequence_logps(model, batch, temperature=2.0)
    with torch.no_grad():
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits / 2.0
    from llmops.preference.logps import completion_logps

    expect, _ = completion_logps(logits, batch["input_ids"], batch["completion_mask"])
    assert not torch.allclose(plain, hot)
    assert torch.allclose(hot, expect, atol=1e-4)

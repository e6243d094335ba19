"""train.epochs, train.select_best and train.early_stopping on the tiny built-in model."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from llmops.errors import ConfigError, UserError
from llmops.train.engine import Engine
from llmops.train.selection import direction, steps_for_epochs
from train.helpers import load, make_records, sft_recipe

FULL = {"enabled": False}


def _data(tmp_path, n=16):
    path = tmp_path / "data.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in make_records(n, seed=5)))
    return path


def _evals(out):
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    return [r for r in rows if r["kind"] == "eval"]


def test_epochs_set_the_run_length(tmp_path):
    out = tmp_path / "run"
    recipe = sft_recipe(_data(tmp_path, 12), out, lora=FULL, train={"epochs": 2, "max_steps": 99, "batch_size": 4})
    result = Engine(load(tmp_path, recipe)).run()
    assert result.steps == 6  # 12 records / 4 per batch = 3 batches per epoch
    assert result.manifest["max_steps"] == 6
    assert steps_for_epochs(1.5, 3, 2) == 3 and steps_for_epochs(0.01, 3, 1) == 1


def test_select_best_saves_the_best_validation_as_final(tmp_path):
    """Choosing the *highest* eval_loss picks step 0: final/ must hold the untouched initial weights."""
    out = tmp_path / "run"
    train = {"max_steps": 6, "lr": 5e-3, "eval_every": 2, "select_best": "eval_loss", "select_mode": "max"}
    recipe = sft_recipe(_data(tmp_path), out, lora=FULL, train=train, data={"validation_split": 0.25})
    result = Engine(load(tmp_path, recipe)).run()
    evals = _evals(out)
    assert [e["step"] for e in evals] == [0, 2, 4, 6]
    worst = max(evals, key=lambda e: e["eval_loss"])
    sel = result.manifest["selection"]
    assert sel["best_step"] == worst["step"] == 0 and sel["best"] == pytest.approx(worst["eval_loss"])
    assert result.metrics["eval_loss"] == pytest.approx(worst["eval_loss"])  # final metrics describe final/
    assert result.steps == 6
    best = load_file(str(out / "best" / "trainable.safetensors"))
    from llmops.models.refs import resolve_model
    from transformers import AutoModelForCausalLM

    initial = AutoModelForCausalLM.from_pretrained(resolve_model("builtin:tiny")).state_dict()
    final = load_file(str(next((out / "final").glob("*.safetensors"))))
    name = "model.layers.0.self_attn.q_proj.weight"
    assert torch.equal(final[name], initial[name])
    assert torch.equal(best[name], initial[name])


def test_select_best_min_keeps_the_lowest_loss(tmp_path):
    out = tmp_path / "run"
    train = {"max_steps": 6, "lr": 5e-3, "eval_every": 2, "select_best": "eval_loss"}
    recipe = sft_recipe(_data(tmp_path), out, lora=FULL, train=train, data={"validation_split": 0.25})
    result = Engine(load(tmp_path, recipe)).run()
    evals = _evals(out)
    best = min(evals, key=lambda e: e["eval_loss"])
    assert result.manifest["selection"]["best_step"] == best["step"] != 0
    assert result.manifest["selection"]["mode"] == "min"


def test_early_stopping_stops_after_patience(tmp_path):
    out = tmp_path / "run"
    train = {"max_steps": 40, "lr": 5e-3, "eval_every": 1, "select_best": "eval_loss", "select_mode": "max",
             "early_stopping": {"patience": 2}}
    recipe = sft_recipe(_data(tmp_path), out, lora=FULL, train=train, data={"validation_split": 0.25})
    result = Engine(load(tmp_path, recipe)).run()
    assert result.steps == 2  # step 0 stays the best; steps 1 and 2 use up the patience
    assert result.manifest["selection"]["stopped_early_at"] == 2
    assert result.manifest["steps_completed"] == 2
    trains = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in trains if r["kind"] == "train"] == [1, 2]


def test_selection_config_errors(tmp_path):
    data = _data(tmp_path)
    for train, needle in (({"select_best": "eval_loss"}, "eval_every"),
                          ({"early_stopping": {"patience": 2}}, "needs select_best"),
                          ({"select_best": "loss", "eval_every": 1}, "not a validation metric")):
        with pytest.raises(ConfigError, match=needle):
            load(tmp_path, sft_recipe(data, tmp_path / "x", train=train))


def test_select_best_names_an_unknown_metric(tmp_path):
    train = {"eval_every": 1, "select_best": "eval_reward_accuracy"}
    recipe = sft_recipe(_data(tmp_path), tmp_path / "run", train=train, data={"validation_split": 0.25})
    with pytest.raises(UserError, match="eval_reward_accuracy.*eval_loss"):
        Engine(load(tmp_path, recipe)).run()


def test_select_best_needs_validation(tmp_path):
    recipe = sft_recipe(_data(tmp_path), tmp_path / "run", train={"eval_every": 1, "select_best": "eval_loss"})
    with pytest.raises(UserError, match="validation data"):
        Engine(load(tmp_path, recipe)).run()


def test_direction():
    assert direction("eval_loss", "auto") == "min" and direction("eval_accuracy", "auto") == "max"
    assert direction("eval_loss", "max") == "max"


def _validation_suite(tmp_path, limit=6):
    """The shipped docstring suite on its validation split (a copy, so `llmops eval run` can score it too)."""
    import yaml

    from llmops.resources import path as resources

    suite = yaml.safe_load((resources() / "eval" / "docstring_summary.yaml").read_text())
    suite["dataset"].update(split="validation", limit=limit)
    suite["generation"]["max_new_tokens"] = 8
    out = tmp_path / "suite.yaml"
    out.write_text(yaml.safe_dump(suite))
    return out


def test_generation_eval_scores_like_eval_run_and_selects(tmp_path):
    """eval_gen_* at step 0 equals `llmops eval run` of the untouched base on the same prompts; select_best uses it."""
    from llmops.eval.api import evaluate
    from llmops.eval.in_training import generation_validator

    suite = _validation_suite(tmp_path)
    out = tmp_path / "run"
    train = {"max_steps": 4, "lr": 5e-3, "eval_every": 2, "select_best": "eval_gen_rougeL",
             "generation_eval": {"suite": str(suite), "split": None, "limit": None}}
    recipe = sft_recipe(_data(tmp_path), out, lora=FULL, train=train, data={"validation_split": 0.25})
    result = Engine(load(tmp_path, recipe), generation_validator=generation_validator).run()
    evals = _evals(out)
    assert [e["step"] for e in evals] == [0, 2, 4]
    assert {"eval_gen_rougeL", "eval_gen_bleu", "eval_gen_rouge1"} <= set(evals[0])
    reference = evaluate("builtin:tiny", suite, tmp_path / "ev", use_cache=False)
    for name in ("rougeL", "bleu"):
        assert evals[0][f"eval_gen_{name}"] == pytest.approx(reference["metrics"][name]["score"], abs=1e-9)
    best = max(evals, key=lambda e: (e["eval_gen_rougeL"], -e["step"]))
    assert result.manifest["selection"]["best_step"] == best["step"]
    assert result.metrics["eval_gen_rougeL"] == pytest.approx(best["eval_gen_rougeL"])
    # generating left the model's own generation config alone (final/ keeps the checkpoint's)
    from transformers import GenerationConfig

    from llmops.models.refs import resolve_model

    assert (GenerationConfig.from_pretrained(out / "final").to_diff_dict()
            == GenerationConfig.from_pretrained(resolve_model("builtin:tiny")).to_diff_dict())


def test_generation_eval_needs_the_harness_and_a_generate_suite(tmp_path):
    from llmops.eval.in_training import generation_validator

    data, suite = _data(tmp_path), _validation_suite(tmp_path)
    with pytest.raises(ConfigError, match="generation metric.*generation_eval"):
        load(tmp_path, sft_recipe(data, tmp_path / "x", train={"eval_every": 1, "select_best": "eval_gen_rougeL"}))
    train = {"eval_every": 1, "generation_eval": {"suite": str(suite)}}
    recipe = sft_recipe(data, tmp_path / "run", train=train, data={"validation_split": 0.25})
    with pytest.raises(UserError, match="generation_eval needs the evaluation harness"):
        Engine(load(tmp_path, recipe)).run()
    from llmops.resources import path as resources

    train["generation_eval"] = {"suite": str(resources() / "eval" / "multiple_choice.yaml")}
    recipe = sft_recipe(data, tmp_path / "run2", train=train, data={"validation_split": 0.25})
    with pytest.raises(ConfigError, match="needs task: generate"):
        Engine(load(tmp_path, recipe), generation_validator=generation_validator).run()

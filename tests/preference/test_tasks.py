"""reward / dpo / rloo recipes end to end on the real engine and the built-in model."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import pytest

from llmops.cli.main import main as cli
from llmops.config.loader import load_recipe

pytestmark = pytest.mark.slow

TOPICS = ["files", "sockets", "threads", "dates", "paths", "numbers", "strings", "queues", "locks", "arrays"]


def _separable_pairs(n: int, seed: int) -> list[dict]:
    """Chosen answers are helpful, rejected ones refuse: separable by wording alone."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        topic = rng.choice(TOPICS)
        rows.append(
            {
                "prompt": f"Explain how {topic} work in Python number {rng.randint(0, 999)}.",
                "chosen": f"Here is how {topic} work: open the module and call the function.",
                "rejected": "I do not know and I will not answer that question.",
                "margin": 1.0,
            }
        )
    return rows


def _write(path: Path, rows: list[dict]) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def _train(recipe: str, tmp_path: Path, *overrides: str):
    from llmops.train import run

    loaded = load_recipe(recipe, [f"output.dir={tmp_path / 'run'}", *overrides])
    return run(loaded)


def _metrics(run_dir: Path, kind: str = "train") -> list[dict]:
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r.get("kind", "train") == kind]


def test_reward_model_separates_synthetic_pairs_and_scores_via_cli(tmp_path, capsys):
    train = _write(tmp_path / "train.jsonl", _separable_pairs(64, seed=0))
    held = _write(tmp_path / "held.jsonl", _separable_pairs(24, seed=1))
    Path(train + ".meta.json").write_text(json.dumps({"snapshot_id": "fbs_test123"}))
    result = _train(
        "recipes/reward.yaml", tmp_path, f"data.train={train}", f"data.validation={held}",
        "train.max_steps=15", "train.batch_size=8", "train.log_every=5", "train.warmup_steps=2", "data.max_length=64",
        "reward.margin_column=null",
    )
    assert result.metrics["eval_accuracy"] >= 0.9
    assert result.manifest["feedback_snapshot_id"] == "fbs_test123"

    from transformers import AutoModelForSequenceClassification

    hf = AutoModelForSequenceClassification.from_pretrained(result.final_dir)
    assert hf.config.num_labels == 1

    assert cli(["reward", "score", "--model", str(result.final_dir), "--input", held, "--json",
                "--output", str(tmp_path / "scored.jsonl")]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["kind"] == "pairs" and summary["accuracy"] >= 0.9
    scored = [json.loads(x) for x in (tmp_path / "scored.jsonl").read_text().splitlines()]
    assert len(scored) == 24 and all("chosen_score" in r for r in scored)


def test_dpo_starts_at_log2_learns_and_precomputed_reference_matches_live(tmp_path):
    train = _write(tmp_path / "train.jsonl", _separable_pairs(32, seed=2))
    runs = {}
    for precompute in (False, True):
        out = tmp_path / f"pre-{precompute}"
        out.mkdir()
        runs[precompute] = _train(
            "recipes/dpo.yaml", out, f"data.train={train}", "data.validation_split=0", "train.max_steps=6",
            "train.batch_size=4", "train.log_every=1", "train.lr=5e-3", "train.warmup_steps=0",
            "data.max_length=64", "data.limit=null", f"dpo.precompute_ref_logps={str(precompute).lower()}",
        )
    rows = _metrics(runs[False].run_dir)
    first = rows[0]
    # LoRA starts as a no-op (B = 0): policy == reference, so loss = log 2 and margin = 0.
    assert first["loss"] == pytest.approx(math.log(2), abs=1e-6)
    assert first["reward_margin"] == pytest.approx(0.0, abs=1e-6)
    for key in ("reward_accuracy", "reward_chosen", "reward_rejected", "logps_chosen", "logps_rejected"):
        assert key in first
    assert rows[-1]["loss"] < first["loss"] - 0.02
    assert rows[-1]["reward_margin"] > 0
    # Precomputing the reference once changes nothing but the cost.
    pre = _metrics(runs[True].run_dir)
    assert [r["loss"] for r in pre] == pytest.approx([r["loss"] for r in rows], abs=1e-5)
    assert (runs[True].run_dir / "ref_logps.json").exists()
    assert not (runs[False].run_dir / "ref_logps.json").exists()
    final = runs[False].final_dir
    assert (final / "adapter_config.json").exists() and not (final / "ref").exists()


def test_dpo_rpo_alpha_adds_the_chosen_nll_to_the_logged_loss(tmp_path):
    """dpo.rpo_alpha reaches the loss: at step 1 (policy = reference) loss = log 2 + alpha * NLL(chosen)."""
    from llmops.errors import UserError

    train = _write(tmp_path / "train.jsonl", _separable_pairs(8, seed=3))
    common = [f"data.train={train}", "data.validation_split=0", "train.max_steps=1", "train.batch_size=4",
              "train.log_every=1", "train.warmup_steps=0", "data.max_length=64", "data.limit=null"]
    out = tmp_path / "rpo"
    out.mkdir()
    first = _metrics(_train("recipes/dpo.yaml", out, *common, "dpo.rpo_alpha=0.5").run_dir)[0]
    assert first["nll_chosen"] > 0
    assert first["loss"] == pytest.approx(math.log(2) + 0.5 * first["nll_chosen"], abs=1e-4)
    with pytest.raises((UserError, ValueError), match="rpo_alpha"):
        load_recipe("recipes/dpo.yaml", ["dpo.rpo_alpha=-0.1"])


def toy_reward(prompts, completions):
    """Shorter is better: a reward the policy can raise by ending its turn earlier."""
    return [1.0 - min(len(c), 80) / 80 for c in completions]


def test_rloo_raises_a_toy_reward(tmp_path):
    prompts = _write(tmp_path / "prompts.jsonl", [{"prompt": f"Name a Python module about {t}."} for t in TOPICS])
    result = _train(
        "recipes/rloo.yaml", tmp_path, f"rloo.reward_model=fn:{__name__}:toy_reward", f"data.train={prompts}",
        "train.max_steps=24", "train.log_every=1", "train.batch_size=2", "rloo.k=4", "rloo.max_new_tokens=10",
        "data.max_length=48", "train.lr=3e-3", "rloo.kl_coef=0.01", "data.limit=null",
    )
    rows = _metrics(result.run_dir)
    assert len(rows) == 24
    assert rows[0]["kl"] == pytest.approx(0.0, abs=1e-6)  # LoRA starts as the reference
    rewards = [r["reward"] for r in rows]
    early, late = sum(rewards[:8]) / 8, sum(rewards[-8:]) / 8
    assert late > early + 0.1, (early, late)

"""The quickstart's evaluation prompts are in neither v1's SFT data nor the simulated traffic."""

from __future__ import annotations

from llmops.config import load_recipe
from llmops.data.splits import load_splits
from llmops.eval.suites import load_suite
from llmops.eval.tasks import load_suite_records
from llmops.loop.quickstart import Quickstart
from llmops.loop.settings import DEFAULT, FAST


def _norm(text: str) -> str:
    return " ".join(text.split())


def test_eval_prompts_are_not_trained_on_or_served(tmp_path):
    for settings in (DEFAULT, FAST):
        qs = Quickstart(tmp_path / settings.name / str(settings.traffic_requests), settings)
        suite, base_dir = load_suite(qs.suite)
        evaluated = {_norm(r["prompt"]) for r in load_suite_records(suite, base_dir, suite.dataset.split)}
        assert len(evaluated) >= settings.eval_limit
        sft = load_recipe(qs.recipes / "sft_lora.yaml", [f"data.limit={settings.train_limit}"]).recipe
        splits = load_splits(sft.data, sft.train.seed, "sft")
        trained = {_norm(r["prompt"]) for r in splits.train + (splits.validation or [])}
        served = {_norm(r["prompt"]) for r in qs._records(settings.traffic_splits, settings.traffic_requests)}
        assert not evaluated & trained
        assert not evaluated & served
        assert "test" not in settings.traffic_splits
        assert len(served) == min(settings.traffic_requests, 514)  # each prompt once in the default profile

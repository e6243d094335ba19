"""The vLLM engine is sized to the window a run needs, options come from the suite and the
command line, and an answer that cannot fit is an error (the engine itself: test_vllm_engine.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmops.errors import ConfigError
from llmops.eval.runner import window_needed
from llmops.eval.suites import load_suite
from llmops.eval.tasks import build_samples, load_suite_records

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def tokenizer():
    from llmops.models.loading import load_tokenizer

    return load_tokenizer("builtin:tiny")


@pytest.mark.parametrize("name", ["docstring_summary", "multiple_choice", "heldout_perplexity"])
def test_window_is_the_longest_request_plus_its_answer(name, tokenizer):
    suite, base = load_suite(REPO / "eval" / f"{name}.yaml", {"limit": 5})
    records = load_suite_records(suite, base, suite.dataset.split, 5)
    samples = build_samples(suite, records, tokenizer if suite.task != "perplexity" else None)
    need = window_needed(suite, samples, tokenizer)
    if suite.task == "perplexity":
        assert need is None  # rolling windows are the model's: never shrink them
        return
    prompts = [len(tokenizer(s.prompt, add_special_tokens=s.add_special_tokens)["input_ids"]) for s in samples]
    answer = suite.generation.max_new_tokens if suite.task == "generate" else max(
        len(tokenizer(suite.choice_prefix + c, add_special_tokens=False)["input_ids"]) for s in samples for c in s.choices)
    assert need == max(prompts) + answer + 2


def test_engine_dtype_belongs_to_the_command_line(tmp_path):
    suite = tmp_path / "s.yaml"
    suite.write_text((REPO / "eval" / "docstring_summary.yaml").read_text() + "engine: {dtype: bfloat16}\n")
    with pytest.raises(ConfigError, match="engine.dtype"):
        load_suite(suite)

"""hf generation batches are cut by rows and, on CPU, by padded tokens: a few long prompts no
longer pad a whole batch of short ones. fp32 greedy outputs must not change with the cut,
and where the batch is in the cache key (bf16, sampling) the token budget is too."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmops.eval.backends import GenerationParams, Prompt, load_backend
from llmops.eval.backends.hf import CPU_GENERATE_TOKENS
from llmops.eval.fingerprints import output_cache_key


@pytest.fixture(scope="module")
def backend(random_llama: Path):
    b = load_backend("hf", str(random_llama), batch_size=16, device="cpu")
    yield b
    b.close()


def _prompts() -> list[Prompt]:
    words = "Return the number of items in the list Compute sum two integers Open file read".split()
    return [Prompt(" ".join(words[i % 7 :] * (1 + (i * 5) % 11))) for i in range(20)]  # 2 to ~150 tokens


def test_batches_respect_the_token_budget_and_outputs_do_not_change(backend, monkeypatch) -> None:
    prompts, params = _prompts(), GenerationParams(max_new_tokens=6)
    backend.batch_size = 1
    reference = [g.token_ids for g in backend.generate(prompts, params)]

    shapes: list[tuple[int, int]] = []
    greedy = backend._greedy_dropping_finished  # plain fp32 greedy on CPU: the backend's loop, not generate

    def spy(ids, *args, **kwargs):
        shapes.append(tuple(ids.shape))
        return greedy(ids, *args, **kwargs)

    monkeypatch.setattr(backend, "_greedy_dropping_finished", spy)
    backend.batch_size, backend.max_generate_tokens = 16, 400
    outputs = [g.token_ids for g in backend.generate(prompts, params)]
    assert outputs == reference  # same tokens, original order
    assert len({rows for rows, _ in shapes}) > 1  # long prompts in small batches, short ones together
    assert all(rows * (width + 6) <= 400 or rows == 1 for rows, width in shapes)
    assert all(rows <= 16 for rows, _ in shapes)


def test_cpu_default_budget(backend) -> None:
    fresh = type(backend).from_loaded(backend.model, backend.tokenizer, batch_size=8)
    assert fresh.max_generate_tokens == CPU_GENERATE_TOKENS


def test_token_budget_is_in_the_key_where_the_batch_is(tmp_path: Path) -> None:
    import json

    from llmops.eval.suites import load_suite

    (tmp_path / "d.jsonl").write_text(json.dumps({"q": "a", "a": "b"}) + "\n")
    (tmp_path / "s.yaml").write_text(json.dumps({
        "name": "k", "task": "generate", "dataset": {"path": "d.jsonl"}, "prompt": {"template": "{q}"},
        "references": "a", "metrics": ["exact_match"]}))
    suite, _ = load_suite(tmp_path / "s.yaml")
    parts = {dtype: output_cache_key("m", suite, [], "hf", dtype, "cpu", 8, {})[1] for dtype in ("float32", "bfloat16")}
    assert "generate_batch_tokens" not in parts["float32"]  # fp32 greedy: batch invariant, no batch in the key
    assert parts["bfloat16"]["batch_size"] == 8
    assert parts["bfloat16"]["generate_batch_tokens"] == CPU_GENERATE_TOKENS

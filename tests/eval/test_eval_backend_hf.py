"""The hf backend: greedy outputs independent of the batch size (1, 7, 32), original
order restored, stop strings, and log-likelihoods equal to an unbatched forward pass."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from llmops.eval.backends import GenerationParams, Prompt, load_backend
from llmops.eval.backends.base import encode_pair

WORDS = "Return the number of items in the list Compute sum two integers Open file read quick brown fox".split()


def _prompts(n: int) -> list[Prompt]:
    return [Prompt(" ".join(WORDS[(i * 3) % len(WORDS) : (i * 3) % len(WORDS) + 1 + (i * 7) % 9])) for i in range(n)]


@pytest.fixture(scope="module")
def backend(random_llama: Path):
    b = load_backend("hf", str(random_llama), batch_size=32, device="cpu")
    yield b
    b.close()


def test_greedy_outputs_do_not_depend_on_batch_size(backend) -> None:
    prompts = _prompts(33)  # bs 32 → two batches, bs 7 → five, with mixed lengths
    params = GenerationParams(max_new_tokens=8)
    outputs = {}
    for bs in (1, 7, 32):
        backend.batch_size = bs
        outputs[bs] = [g.token_ids for g in backend.generate(prompts, params)]
    assert outputs[1] == outputs[7] == outputs[32]
    assert len({tuple(o) for o in outputs[1]}) > 5  # not one degenerate output
    # order restored: each output equals the single-prompt generation of its prompt
    backend.batch_size = 32
    for i in (13, 32):
        assert backend.generate([prompts[i]], params)[0].token_ids == outputs[32][i]


def test_greedy_loop_dropping_finished_rows_equals_generate(backend) -> None:
    """The plain-greedy fast path (rows leave the batch at EOS) gives `model.generate`'s tokens,
    with left padding and rows that stop at different steps."""
    prompts = _prompts(20)
    params = GenerationParams(max_new_tokens=12)
    assert backend._greedy_cache_arg(params) is not None  # the fast path is the one under test
    assert backend.effective_generation_config(params)["engine"].startswith("llmops greedy loop")
    saved = backend.eos_ids
    try:
        backend.eos_ids = []  # no EOS: pick tokens the model does produce as EOS, so rows stop early
        free = [g.token_ids for g in backend.generate(prompts, params)]
        backend.eos_ids = sorted({free[0][2], free[3][5], free[7][0]})
        fast = [g.token_ids for g in backend.generate(prompts, params)]
        cache_arg = backend._greedy_cache_arg
        backend._greedy_cache_arg = lambda params: None  # force transformers' generate
        try:
            reference = [g.token_ids for g in backend.generate(prompts, params)]
        finally:
            del backend._greedy_cache_arg
        assert cache_arg(params) is not None
    finally:
        backend.eos_ids = saved
    assert fast == reference
    assert sum(len(t) < 12 for t in fast) >= 3 and any(len(t) == 12 for t in fast)  # some stopped early, some did not
    # sampling, stop strings and penalties keep transformers' generate
    for other in (GenerationParams(max_new_tokens=4, temperature=0.7), GenerationParams(max_new_tokens=4, stop=("x",)),
                  GenerationParams(max_new_tokens=4, repetition_penalty=1.2), GenerationParams(max_new_tokens=4, ignore_eos=True)):
        assert backend._greedy_cache_arg(other) is None


def test_stop_strings_cut_the_text(backend) -> None:
    prompts = _prompts(6)
    free = backend.generate(prompts, GenerationParams(max_new_tokens=16))
    # choose a stop string that occurs inside the first free-running output
    text = free[0].text
    stop = text[len(text) // 2 : len(text) // 2 + 2]
    if not stop.strip():
        pytest.skip("degenerate output")
    cut = backend.generate(prompts, GenerationParams(max_new_tokens=16, stop=(stop,)))
    assert cut[0].text == text[: text.find(stop)]
    assert cut[0].finish_reason == "stop"
    for f, c in zip(free, cut):
        assert f.text.startswith(c.text)


def _manual_logprob(model, ctx: list[int], cont: list[int]) -> float:
    ids = torch.tensor([ctx + cont])
    with torch.no_grad():
        logp = torch.log_softmax(model(ids).logits[0].double(), -1)
    return float(sum(logp[len(ctx) - 1 + j, t] for j, t in enumerate(cont)))


def test_loglikelihood_matches_unbatched_forward(backend) -> None:
    requests = [(Prompt("Return the"), " number of items"), (Prompt("Open the file and"), " read"),
                (Prompt("quick"), " brown fox jumps over the lazy dog")]
    got = backend.loglikelihood(requests)
    for (ctx, cont), res in zip(requests, got):
        c, t = encode_pair(backend.tokenizer, ctx.text, cont)
        assert res.n_tokens == len(t)
        assert res.logprob == pytest.approx(_manual_logprob(backend.model, c, t), abs=1e-4)


def test_long_text_is_scored_in_windows(backend) -> None:
    text = " ".join(WORDS * 3)
    old = backend.max_length
    backend.max_length = 8
    try:
        (res,) = backend.loglikelihood([(Prompt("", False), text)])
    finally:
        backend.max_length = old
    ids = backend.tokenizer(text, add_special_tokens=False)["input_ids"]
    assert res.n_tokens == len(ids) > 8
    # lm-evaluation-harness's rolling windows (context_len=1): full windows after the first
    # see one token before them, the last, shorter one sees the whole window before it.
    expected, done = _manual_logprob(backend.model, [backend.tokenizer.eos_token_id], ids[:8]), 8
    while done < len(ids):
        end = min(done + 8, len(ids))
        expected += _manual_logprob(backend.model, ids[end - 9 : done], ids[done:end])
        done = end
    assert len(ids) % 8 != 0  # the last window is a short one (the case that differs from disjoint windows)
    assert res.logprob == pytest.approx(expected, abs=1e-3)


def test_rolling_windows_cover_every_token_once_with_stride() -> None:
    from llmops.eval.backends.base import rolling_windows

    tokens = list(range(100, 123))
    for stride in (None, 1, 3, 8):
        windows = rolling_windows([0], tokens, 8, stride)
        assert [t for _, cont in windows for t in cont] == tokens
        for ctx, cont in windows[1:]:
            assert len(ctx) + len(cont) <= 9  # one window: input of at most max_length tokens
            assert ctx == tokens[tokens.index(cont[0]) - len(ctx) : tokens.index(cont[0])]
    assert [len(c) for c, _ in rolling_windows([0], tokens, 8, 3)[1:]] == [6] * 5
    with pytest.raises(ValueError, match="stride"):
        rolling_windows([0], tokens, 8, 9)


def test_vllm_backend_missing_is_a_clear_error(random_llama: Path) -> None:
    pytest.importorskip("torch")
    try:
        import vllm  # noqa: F401
    except ImportError:
        from llmops.errors import UserError

        with pytest.raises(UserError, match=r"llmops\[vllm\]"):
            load_backend("vllm", str(random_llama))
    else:
        pytest.skip("vLLM is installed here")

"""`llmops serve` as the official `openai` client sees it: chat and completions, streaming,
logprobs (top-k), echo, max_completion_tokens, stop, n, seed, usage and OpenAI's errors."""

from __future__ import annotations

import math

import pytest

openai = pytest.importorskip("openai")

from .helpers import client_key  # noqa: E402


@pytest.fixture(scope="module")
def client(served):
    token = client_key(served.db_url, "openai-sdk")
    with openai.OpenAI(base_url=f"{served.url}/v1", api_key=token, max_retries=0, timeout=120) as c:
        yield c


MESSAGES = [{"role": "user", "content": "Return the number of items in the list."}]


def test_chat_and_streaming_give_the_same_text(client):
    plain = client.chat.completions.create(model="builtin:tiny", messages=MESSAGES, temperature=0,
                                           max_completion_tokens=12)
    assert plain.choices[0].message.role == "assistant" and plain.usage.completion_tokens <= 12
    stream = client.chat.completions.create(model="builtin:tiny", messages=MESSAGES, temperature=0,
                                            max_completion_tokens=12, stream=True,
                                            stream_options={"include_usage": True})
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == plain.choices[0].message.content
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == plain.choices[0].finish_reason
    assert chunks[-1].usage.completion_tokens == plain.usage.completion_tokens  # the usage chunk
    assert chunks[0].choices[0].delta.role == "assistant"


def test_completions_streaming_with_n_and_a_stop_string(client):
    stream = client.completions.create(model="builtin:tiny", prompt="Open a file", temperature=0.8, seed=7, n=2,
                                       max_tokens=10, stop=["\n"], stream=True)
    texts: dict[int, str] = {}
    for chunk in stream:
        for choice in chunk.choices:
            texts[choice.index] = texts.get(choice.index, "") + choice.text
    assert set(texts) == {0, 1} and all("\n" not in t for t in texts.values())
    again = client.completions.create(model="builtin:tiny", prompt="Open a file", temperature=0.8, seed=7, n=2,
                                      max_tokens=10, stop=["\n"])
    assert [c.text for c in again.choices] == [texts[0], texts[1]]  # same seed, same answer


def test_chat_logprobs_with_top_alternatives(client):
    out = client.chat.completions.create(model="builtin:tiny", messages=MESSAGES, temperature=0, max_tokens=6,
                                         logprobs=True, top_logprobs=3)
    content = out.choices[0].logprobs.content
    assert "".join(t.token for t in content) == out.choices[0].message.content[: len("".join(t.token for t in content))]
    for t in content:
        assert len(t.top_logprobs) == 3 and t.logprob <= 0
        assert t.logprob == pytest.approx(max(a.logprob for a in t.top_logprobs), abs=1e-4)  # greedy: the top one
        assert sum(math.exp(a.logprob) for a in t.top_logprobs) <= 1 + 1e-4


def test_completion_echo_logprobs_score_the_prompt_like_the_eval_harness(client):
    from llmops.eval.backends import Prompt, load_backend

    context, continuation = "Return the number", " of items in the list."
    out = client.completions.create(model="builtin:tiny", prompt=context + continuation, max_tokens=1, temperature=0,
                                    echo=True, logprobs=1)
    lp = out.choices[0].logprobs
    assert out.choices[0].text.startswith(context + continuation)
    assert lp.token_logprobs[0] is None and lp.text_offset[0] == 0
    picked = [i for i, off in enumerate(lp.text_offset) if len(context) <= off < len(context + continuation)]
    served_ll = sum(lp.token_logprobs[i] for i in picked)
    hf = load_backend("hf", "builtin:tiny", device="cpu")
    (ll,) = hf.loglikelihood([(Prompt(context), continuation)])
    hf.close()
    assert served_ll == pytest.approx(ll.logprob, abs=1e-3) and len(picked) == ll.n_tokens


def test_errors_come_in_openai_shape(client):
    with pytest.raises(openai.BadRequestError) as exc:
        client.completions.create(model="builtin:tiny", prompt="x", logprobs=9)
    assert exc.value.body["param"] == "logprobs" and exc.value.body["type"] == "invalid_request_error"
    with pytest.raises(openai.BadRequestError, match="max_completion_tokens"):
        client.chat.completions.create(model="builtin:tiny", messages=MESSAGES, max_tokens=5, max_completion_tokens=6)
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="someone-else", messages=MESSAGES)

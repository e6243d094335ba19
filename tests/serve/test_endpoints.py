"""Completions and chat over real HTTP with the built-in model: answers, batching, limits, errors."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from .helpers import Served, metric_samples

PROMPTS = ["Return the", "Convert a", "The default", "Create a new", "If the", "Raise an error when the"]


def complete(served: Served, **body) -> dict:
    r = served.client.post("/v1/completions", json=body)
    assert r.status_code == 200, r.text
    return r.json()


def test_completion_shape_usage_and_feedback_record(served: Served) -> None:
    from llmops.feedback.store import FeedbackStore

    out = complete(served, prompt="Return the", max_tokens=8, temperature=0)
    assert out["object"] == "text_completion" and out["id"].startswith("cmpl-")
    [choice] = out["choices"]
    assert choice["finish_reason"] in ("stop", "length") and choice["text"]
    usage = out["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert 1 <= usage["completion_tokens"] <= 8 and usage["prompt_tokens"] >= 1
    info = out["llmops"]
    assert info["response_ids"] == [choice["response_id"]] and info["item_id"] == choice["item_id"]
    assert info["model"] == "builtin:tiny" and len(info["model_sha256"]) == 64
    assert info["model_version"] == info["model_sha256"][:12]
    assert out["system_fingerprint"] == "fp_" + info["model_sha256"][:16]

    item = FeedbackStore(served.db_url, migrate=False).get_item(info["item_id"])
    assert item.prompt == "Return the"
    [resp] = item.responses
    assert (resp.id, resp.text, resp.model, resp.model_version) == (
        choice["response_id"], choice["text"], "builtin:tiny", info["model_version"])
    assert resp.generation_params["temperature"] == 0 and resp.generation_params["max_tokens"] == 8
    assert item.metadata["endpoint"] == "completion" and item.metadata["model_sha256"] == info["model_sha256"]


def test_chat_uses_template_and_records_the_conversation(served: Served) -> None:
    from llmops.feedback.store import FeedbackStore

    messages = [{"role": "system", "content": "Summarize."},
                {"role": "user", "content": "Return the absolute value of a number."}]
    r = served.client.post("/v1/chat/completions", json={"messages": messages, "max_tokens": 24, "temperature": 0,
                                                           "n": 2, "user": "u-1"})
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["object"] == "chat.completion" and len(out["choices"]) == 2
    assert [c["index"] for c in out["choices"]] == [0, 1]
    assert all(c["message"]["role"] == "assistant" for c in out["choices"])
    # greedy: both choices are the same text, but each is its own feedback response
    assert out["choices"][0]["message"]["content"] == out["choices"][1]["message"]["content"]
    ids = out["llmops"]["response_ids"]
    assert len(set(ids)) == 2 and [c["response_id"] for c in out["choices"]] == ids
    item = FeedbackStore(served.db_url, migrate=False).get_item(out["llmops"]["item_id"])
    assert item.prompt == messages[-1]["content"] and item.context is None  # system prompt: metadata only
    assert item.metadata["messages"][0] == messages[0]
    assert item.metadata["messages"] == messages and item.metadata["user"] == "u-1"
    assert out["choices"][0]["finish_reason"] in ("stop", "length")
    assert complete(served, prompt="x", max_tokens=1, temperature=0)["choices"][0]["finish_reason"] == "length"


def test_concurrent_requests_are_batched_and_match_unbatched_answers(served: Served) -> None:
    before = metric_samples(served.client.get("/metrics").text, "llmops_serve_batch_rows")
    bodies = [{"prompt": p, "max_tokens": 6 + i, "temperature": 0} for i, p in enumerate(PROMPTS)]
    with ThreadPoolExecutor(len(bodies)) as pool:
        batched = list(pool.map(lambda b: complete(served, **b), bodies))
    after = metric_samples(served.client.get("/metrics").text, "llmops_serve_batch_rows")

    def delta(key):
        return after.get(key, 0.0) - before.get(key, 0.0)

    calls = delta(("llmops_serve_batch_rows_count",))
    single_row_calls = delta(("llmops_serve_batch_rows_bucket", ("le", "1.0")))
    assert calls < len(bodies), "every request ran alone: nothing was batched"
    assert single_row_calls < calls, "no backend call had more than one sequence"
    assert served.client.get("/healthz").json()["batcher"]["max_rows"] > 1

    for body, got in zip(bodies, batched):
        alone = complete(served, **body)  # sequential: a batch of one
        assert got["choices"][0]["text"] == alone["choices"][0]["text"], body
        assert got["usage"] == alone["usage"]
        assert got["choices"][0]["response_id"] != alone["choices"][0]["response_id"]


def test_stop_strings_cut_the_text_and_the_token_count(served: Served) -> None:
    # the first prompt whose greedy answer is long enough to cut in the middle (the built-in
    # model may stop early on any one prompt)
    for prompt in ("Return the", "Convert a", "The default", "Create a new", "Open the file"):
        full = complete(served, prompt=prompt, max_tokens=16, temperature=0)["choices"][0]["text"]
        if len(full) >= 8:
            break
    assert len(full) >= 8, full
    stop = full[len(full) // 2 : len(full) // 2 + 3]
    cut = complete(served, prompt=prompt, max_tokens=16, temperature=0, stop=[stop, "\x7f"])
    assert cut["choices"][0]["text"] == full[: full.index(stop)]
    assert cut["choices"][0]["finish_reason"] == "stop"
    assert cut["usage"]["completion_tokens"] < 16


def test_seeded_sampling_is_reproducible(served: Served) -> None:
    body = {"prompt": "The default", "max_tokens": 12, "temperature": 1.0, "n": 3, "seed": 7}
    a, b = complete(served, **body), complete(served, **body)
    texts = [c["text"] for c in a["choices"]]
    assert texts == [c["text"] for c in b["choices"]]
    assert len(set(texts)) > 1, "n samples with temperature 1 should differ"


def test_multiple_prompts_get_one_item_each(served: Served) -> None:
    out = complete(served, prompt=["Return the", "Convert a"], max_tokens=4, temperature=0, n=2)
    assert len(out["choices"]) == 4 and len(out["llmops"]["item_ids"]) == 2
    assert [c["item_id"] for c in out["choices"]] == [out["llmops"]["item_ids"][0]] * 2 + [out["llmops"]["item_ids"][1]] * 2


def test_models_healthz_metrics(served: Served) -> None:
    models = served.client.get("/v1/models").json()
    assert models["object"] == "list" and models["data"][0]["id"] == "builtin:tiny"
    health = served.client.get("/healthz").json()
    assert health["status"] == "ok" and health["model"]["watching"] is False
    text = served.client.get("/metrics").text
    for name in ("llmops_serve_requests_total", "llmops_serve_batch_rows", "llmops_serve_request_seconds",
                 "llmops_serve_completion_tokens_total", "llmops_serve_prompt_tokens_total"):
        assert name in text
    requests = metric_samples(text, "llmops_serve_requests")
    assert requests[("llmops_serve_requests_total", ("endpoint", "completion"), ("status", "200"))] >= 1
    assert metric_samples(text, "llmops_serve_completion_tokens")[("llmops_serve_completion_tokens_total",)] > 0


BAD = [
    ({}, "prompt"),
    ({"prompt": ""}, "prompt"),
    ({"prompt": "x", "bogus": 1}, "bogus"),
    ({"prompt": "x", "temperature": 3}, "temperature"),
    ({"prompt": "x", "top_p": 0}, "top_p"),
    ({"prompt": "x", "n": 0}, "n"),
    ({"prompt": "x", "n": 17}, "n"),
    ({"prompt": "x", "max_tokens": 0}, "max_tokens"),
    ({"prompt": "x", "max_tokens": "many"}, "max_tokens"),
    ({"prompt": "x", "stop": ["a", "b", "c", "d", "e"]}, "stop"),
    ({"prompt": "x", "stop": [""]}, "stop"),
    ({"prompt": "x", "stream_options": {"include_usage": True}}, None),  # only with stream
    ({"prompt": "x", "logprobs": 6}, "logprobs"),  # at most 5, as OpenAI
    ({"prompt": "x", "frequency_penalty": 0.5}, None),
    ({"prompt": "nul \u0000 byte"}, "prompt"),
    ({"prompt": [1, 2, 3]}, "prompt"),
    ({"prompt": "x", "seed": -1}, "seed"),
]


@pytest.mark.parametrize(("body", "param"), BAD)
def test_bad_completion_requests_are_400_naming_the_field(served: Served, body: dict, param: str | None) -> None:
    r = served.client.post("/v1/completions", json=body)
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert err["type"] == "invalid_request_error" and err["message"]
    if param:
        assert err["param"].split(".")[0] == param, err


BAD_CHAT = [
    ({"messages": []}, "messages"),
    ({"messages": [{"role": "tool", "content": "x"}]}, "messages"),
    ({"messages": [{"role": "user"}]}, "messages"),
    ({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]}, "messages"),
    ({"messages": [{"role": "user", "content": "hi"}], "response_format": {"type": "json_object"}}, None),
]


@pytest.mark.parametrize(("body", "param"), BAD_CHAT)
def test_bad_chat_requests_are_400(served: Served, body: dict, param: str | None) -> None:
    r = served.client.post("/v1/chat/completions", json=body)
    assert r.status_code == 400, r.text
    if param:
        assert r.json()["error"]["param"].startswith(param)


def test_errors_beyond_the_schema(served: Served) -> None:
    c = served.client
    r = c.post("/v1/completions", content=b'{"prompt": ', headers={"content-type": "application/json"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "malformed_json"
    r = c.post("/v1/completions", json={"prompt": "x", "max_tokens": 4000})  # under the cap, past the window
    assert r.status_code == 400 and r.json()["error"]["code"] == "context_length_exceeded"
    r = c.post("/v1/completions", json={"prompt": "x", "max_tokens": 100_000})  # past the server's cap
    assert r.status_code == 413 and r.json()["error"]["code"] == "request_too_large"
    assert r.json()["error"]["param"] == "max_tokens"
    r = c.post("/v1/completions", json={"prompt": "word " * 5000, "max_tokens": 4})
    assert r.status_code == 400 and r.json()["error"]["code"] == "context_length_exceeded"
    r = c.post("/v1/completions", json={"prompt": "x", "model": "gpt-4"})
    assert r.status_code == 404 and r.json()["error"]["code"] == "model_not_found"
    r = c.post("/v1/completions", json={"prompt": "x" * (2 << 20)})
    assert r.status_code == 413
    # a wrong method falls through to the mounted feedback app, which knows no such route
    assert c.get("/v1/completions").status_code == 404
    # the server is still healthy and answering
    assert complete(served, prompt="x", max_tokens=2, model="builtin:tiny")["choices"]


def test_request_log_feeds_the_drift_and_error_rate_monitors(served: Served) -> None:
    import json

    from llmops.monitor.features import read_prompts

    complete(served, prompt="Logged prompt one", max_tokens=2, temperature=0)
    served.client.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": "Logged chat"}],
                                                     "max_tokens": 2})
    assert served.client.post("/v1/completions", json={"prompt": "x", "max_tokens": 4000}).status_code == 400
    assert served.request_log.stat().st_mode & 0o777 == 0o600  # prompts are user data: owner-only
    lines = [json.loads(line) for line in served.request_log.read_text().splitlines()]
    assert {"ts", "status", "endpoint", "latency_s"} <= set(lines[-1])
    ok = [line for line in lines if line["status"] == 200]
    assert any(line.get("prompt") == "Logged prompt one" and line["model_version"] for line in ok)
    assert lines[-1]["status"] == 400 and lines[-1]["prompt"] == "x"
    prompts = read_prompts(served.request_log)  # what `llmops monitor drift --current` reads
    assert "Logged prompt one" in prompts and "Logged chat" in prompts

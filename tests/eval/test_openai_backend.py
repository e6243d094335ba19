"""`--backend openai`: the same greedy outputs as the hf backend through a running
`llmops serve`, and the protocol details against a scripted server (retries, errors,
prompt log-probabilities, the API key)."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from llmops.errors import UserError
from llmops.eval.api import evaluate
from llmops.eval.backends import GenerationParams, Prompt
from llmops.eval.backends.openai_api import OpenAIBackend

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def server(tmp_path_factory, monkeypatch_module):
    from llmops.db import session_factory
    from llmops.feedback.auth import create_key
    from llmops.serve.app import create_app
    from llmops.serve.server import ServerThread

    tmp = tmp_path_factory.mktemp("openai-backend")
    db_url = f"sqlite:///{tmp / 'llmops.db'}"
    app = create_app("builtin:tiny", db_url=db_url, max_batch_size=8, max_wait_ms=20, torch_threads=1, migrate=True,
                     rate_limit_per_s=None)
    with session_factory(db_url)() as s, s.begin():
        monkeypatch_module.setenv("LLMOPS_TEST_CLIENT_KEY", create_key(s, "client", "eval-harness").token)
    with ServerThread(app) as srv:
        yield srv.url


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as mp:
        yield mp


API = {"backend": "openai", "api_key_env": "LLMOPS_TEST_CLIENT_KEY"}


def _outputs(out: Path) -> list[str]:
    return [json.loads(x)["output"] for x in (out / "samples.jsonl").read_text().splitlines()]


@pytest.mark.slow
def test_chat_suite_through_llmops_serve_equals_the_hf_backend(server, tmp_path):
    suite = REPO / "eval" / "docstring_summary.yaml"
    hf = evaluate("builtin:tiny", suite, tmp_path / "hf", use_cache=False, limit=6)
    api = evaluate("builtin:tiny", suite, tmp_path / "api", base_url=f"{server}/v1", limit=6, concurrency=3, **API)
    assert _outputs(tmp_path / "api") == _outputs(tmp_path / "hf")
    assert api["metrics"]["rougeL"]["score"] == pytest.approx(hf["metrics"]["rougeL"]["score"])
    assert api["provenance"]["backend"] == "openai" and api["provenance"]["model_hash"] is None


@pytest.mark.slow
def test_template_suite_uses_completions_and_matches(server, tmp_path):
    data = tmp_path / "d.jsonl"
    data.write_text("".join(json.dumps({"q": q, "a": "x"}) + "\n" for q in ["Return the", "Open a file", "The list of"]))
    suite = tmp_path / "s.yaml"
    suite.write_text(json.dumps({"name": "t", "task": "generate", "dataset": {"path": "d.jsonl"},
                                 "prompt": {"template": "{q}"}, "references": "a",
                                 "generation": {"max_new_tokens": 12, "stop": ["."]}, "metrics": ["exact_match"]}))
    evaluate("builtin:tiny", suite, tmp_path / "hf", use_cache=False)
    evaluate("builtin:tiny", suite, tmp_path / "api", base_url=f"{server}/v1", **API)
    assert _outputs(tmp_path / "api") == _outputs(tmp_path / "hf")


@pytest.mark.slow
def test_multiple_choice_through_echoed_logprobs_equals_the_hf_backend(server, tmp_path):
    suite = REPO / "eval" / "multiple_choice.yaml"
    hf = evaluate("builtin:tiny", suite, tmp_path / "hf", use_cache=False, limit=6)
    api = evaluate("builtin:tiny", suite, tmp_path / "api", base_url=f"{server}/v1", limit=6, **API)
    for name in ("accuracy", "accuracy_norm"):
        assert api["metrics"][name]["score"] == hf["metrics"][name]["score"], name
    rows = {k: [json.loads(x) for x in (tmp_path / k / "samples.jsonl").read_text().splitlines()] for k in ("hf", "api")}
    for a, b in zip(rows["api"], rows["hf"]):
        assert a["logprobs"] == pytest.approx(b["logprobs"], abs=1e-3)


def test_servers_without_prompt_logprobs_are_refused_clearly():
    def handler(request):
        return httpx.Response(400, json={"error": {"message": "echo: not supported by this server"}})

    with pytest.raises(UserError, match="does not return prompt log-probabilities"):
        _backend(handler).loglikelihood([(Prompt("a"), " b")])


def test_remote_backend_needs_a_base_url(tmp_path):
    with pytest.raises(UserError, match="needs --base-url"):
        evaluate("m", REPO / "eval" / "docstring_summary.yaml", tmp_path / "o", backend="openai", limit=1)


# ---------------------------------------------------------------- a scripted server


def _backend(handler, **kw) -> OpenAIBackend:
    return OpenAIBackend("m", "http://api.test/v1", transport=httpx.MockTransport(handler), backoff_s=0.001, **kw)


def test_retries_429_and_5xx_then_succeeds_and_honours_the_body(monkeypatch):
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(json.loads(request.content))
        if len(calls) == 1:
            return httpx.Response(429, headers={"retry-after": "0"}, json={"error": {"message": "slow down"}})
        if len(calls) == 2:
            return httpx.Response(503, text="busy")
        return httpx.Response(200, json={"choices": [{"text": " hi.", "finish_reason": "stop"}],
                                         "usage": {"completion_tokens": 2}})

    gens = _backend(handler).generate([Prompt("Say")], GenerationParams(max_new_tokens=5, stop=(".",)))
    assert gens[0].text == " hi." and gens[0].finish_reason == "stop" and len(gens[0].token_ids) == 2
    assert len(calls) == 3
    assert calls[-1] == {"model": "m", "prompt": "Say", "max_tokens": 5, "n": 1, "temperature": 0.0,
                         "top_p": 1.0, "seed": 0, "stop": ["."]}


def test_client_errors_quote_the_server_and_are_not_retried():
    calls = []

    def handler(request):
        calls.append(1)
        return httpx.Response(400, json={"error": {"message": "max_tokens is too large"}})

    with pytest.raises(UserError, match="HTTP 400: max_tokens is too large"):
        _backend(handler).generate([Prompt("x")], GenerationParams())
    assert len(calls) == 1


def test_chat_prompts_go_to_chat_completions_as_messages():
    seen = {}

    def handler(request):
        seen["path"], seen["body"] = request.url.path, json.loads(request.content)
        return httpx.Response(200, json={"choices": [{"message": {"content": "ok"}, "finish_reason": "length"}]})

    prompt = Prompt("<rendered>", False, (("system", "be brief"), ("user", "hi")))
    assert _backend(handler).generate([prompt], GenerationParams())[0].text == "ok"
    assert seen["path"] == "/v1/chat/completions"
    assert seen["body"]["messages"] == [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]


def test_loglikelihood_sums_the_continuation_tokens_from_echoed_logprobs():
    def handler(request):
        body = json.loads(request.content)
        assert body["echo"] is True and body["logprobs"] == 1 and body["prompt"] == "The cat sat"
        return httpx.Response(200, json={"choices": [{"text": "The cat sat on", "logprobs": {
            "tokens": ["The", " cat", " sat", " on"],
            "token_logprobs": [None, -2.0, -0.5, -1.0],
            "text_offset": [0, 3, 7, 11],
            "top_logprobs": [None, {" cat": -2.0}, {" sat": -0.5}, {" on": -1.0}],
        }}]})

    (ll,) = _backend(handler).loglikelihood([(Prompt("The cat"), " sat")])
    assert ll.logprob == pytest.approx(-0.5) and ll.n_tokens == 1 and ll.greedy


def test_api_key_comes_from_the_named_environment_variable(monkeypatch):
    seen = {}

    def handler(request):
        seen["auth"] = request.headers.get("authorization")
        return httpx.Response(200, json={"choices": [{"text": "", "finish_reason": "length"}]})

    with pytest.raises(UserError, match="MY_KEY: that environment variable is not set"):
        _backend(handler, api_key_env="MY_KEY")
    monkeypatch.setenv("MY_KEY", "sk-test-123")
    _backend(handler, api_key_env="MY_KEY").generate([Prompt("x")], GenerationParams())
    assert seen["auth"] == "Bearer sk-test-123"

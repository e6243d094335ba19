"""`--backend openai`: evaluate a model behind an OpenAI-compatible HTTP API.

`llmops serve`, vLLM's server, TGI and hosted models speak this protocol. Chat suites are
sent as messages to ``/chat/completions`` (the server applies its own chat template);
template suites go to ``/completions`` as text. Log-likelihood tasks (multiple choice,
perplexity) need the prompt's log-probabilities, which only some servers return
(``/completions`` with ``echo`` and ``logprobs``, as vLLM does); a server that refuses is
a clear error, never a silent zero.

Requests run `concurrency` at a time; a 429, a 5xx, a timeout or a dropped connection is
retried with exponential backoff and jitter (``Retry-After`` is honoured), other 4xx
answers are errors that quote the server. The API key is read from an environment
variable the user names (``--api-key-env``), so it never appears on a command line.
"""

from __future__ import annotations

import os
import random
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from llmops.errors import UserError
from llmops.eval.backends.base import Backend, Generation, GenerationParams, Loglikelihood, Prompt

RETRY_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}


class OpenAIBackend(Backend):
    name = "openai"
    needs_rendered_prompts = False

    def __init__(
        self, model: str, base_url: str, api_key_env: str | None = None, concurrency: int = 8,
        max_retries: int = 4, timeout_s: float = 120.0, backoff_s: float = 0.5, transport: Any = None,
    ) -> None:
        """`transport`: an httpx transport (a proxy mount, or a mock in tests); default: the network."""
        super().__init__()
        import httpx

        if not base_url.startswith(("http://", "https://")):
            raise UserError(f"--base-url must be an http(s) URL ending in /v1, got {base_url!r}")
        headers = {}
        if api_key_env:
            key = os.environ.get(api_key_env)
            if not key:
                raise UserError(f"--api-key-env {api_key_env}: that environment variable is not set")
            headers["Authorization"] = f"Bearer {key}"
        self.model, self.base_url = model, base_url.rstrip("/")
        self.concurrency, self.max_retries, self.backoff_s = max(1, concurrency), max_retries, backoff_s
        self.client = httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout_s, transport=transport,
                                   limits=httpx.Limits(max_connections=self.concurrency))
        self.device = self.base_url

    # ------------------------------------------------------------ HTTP

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        import httpx

        for attempt in range(self.max_retries + 1):
            try:
                resp = self.client.post(path, json=body)
            except (httpx.TimeoutException, httpx.TransportError) as exc:
                if attempt == self.max_retries:
                    raise UserError(f"{self.base_url}{path}: {type(exc).__name__} after {attempt + 1} attempts") from None
                self._sleep(attempt, None)
                continue
            if resp.status_code < 400:
                return resp.json()
            if resp.status_code in RETRY_STATUS and attempt < self.max_retries:
                self._sleep(attempt, resp.headers.get("retry-after"))
                continue
            raise APIError(resp.status_code, _error_message(resp), f"{self.base_url}{path}")
        raise AssertionError("unreachable")

    def _sleep(self, attempt: int, retry_after: str | None) -> None:
        try:
            delay = float(retry_after) if retry_after else self.backoff_s * 2**attempt
        except ValueError:
            delay = self.backoff_s * 2**attempt
        time.sleep(min(delay, 60.0) * (1 + 0.25 * random.random()))

    def _map(self, fn, items: list) -> list:
        with ThreadPoolExecutor(self.concurrency) as pool:
            return list(pool.map(fn, items))

    # ------------------------------------------------------------ generation

    def _sampling(self, params: GenerationParams) -> dict[str, Any]:
        body: dict[str, Any] = {"model": self.model, "max_tokens": params.max_new_tokens, "n": 1,
                                "temperature": params.temperature, "top_p": params.top_p if not params.greedy else 1.0,
                                "seed": params.seed}
        if params.stop:
            body["stop"] = list(params.stop)
        return body

    def generate(self, prompts: list[Prompt], params: GenerationParams) -> list[Generation]:
        base = self._sampling(params)

        def one(prompt: Prompt) -> Generation:
            t0 = time.perf_counter()
            if prompt.messages:
                out = self._post("/chat/completions", {**base, "messages": prompt.message_dicts()})
                choice = out["choices"][0]
                text = choice["message"]["content"] or ""
            else:
                out = self._post("/completions", {**base, "prompt": prompt.text})
                choice = out["choices"][0]
                text = choice["text"]
            n_tokens = int((out.get("usage") or {}).get("completion_tokens") or 0)
            finish = {"stop": "stop", "length": "length"}.get(choice.get("finish_reason"), "eos")
            return Generation(text, [0] * n_tokens, time.perf_counter() - t0, finish)

        t0 = time.perf_counter()
        gens = self._map(one, prompts)
        self.stats.generate_seconds += time.perf_counter() - t0
        self.stats.generated_tokens += sum(len(g.token_ids) for g in gens)
        self.stats.latencies.extend(g.latency_s for g in gens)
        return gens

    # ------------------------------------------------------------ log-likelihood

    def loglikelihood(self, requests: list[tuple[Prompt, str]]) -> list[Loglikelihood]:
        if any(ctx.messages for ctx, _ in requests):
            raise UserError("log-likelihood of chat prompts is not available over the API: "
                            "use a `template` prompt for multiple-choice suites with --backend openai")

        def one(req: tuple[Prompt, str]) -> Loglikelihood:
            ctx, cont = req
            return self._echo_logprobs(ctx.text, cont)

        t0 = time.perf_counter()
        out = self._map(one, requests)
        self.stats.score_seconds += time.perf_counter() - t0
        self.stats.scored_tokens += sum(x.n_tokens for x in out)
        return out

    def _echo_logprobs(self, context: str, continuation: str) -> Loglikelihood:
        body = {"model": self.model, "prompt": context + continuation, "max_tokens": 1, "temperature": 0.0,
                "echo": True, "logprobs": 1}
        try:
            out = self._post("/completions", body)
        except APIError as exc:
            if exc.status in (400, 422):
                raise UserError(
                    f"{self.base_url} does not return prompt log-probabilities (echo + logprobs): {exc.message}. "
                    "Log-likelihood tasks (multiple_choice, perplexity) need a server that does, e.g. vLLM's "
                    "OpenAI server; generation suites work with any server."
                ) from None
            raise
        lp = (out["choices"][0].get("logprobs") or {})
        tokens, token_lps, offsets = lp.get("tokens"), lp.get("token_logprobs"), lp.get("text_offset")
        if not tokens or token_lps is None or offsets is None:
            raise UserError(f"{self.base_url}: the answer has no prompt logprobs (tokens/token_logprobs/text_offset)")
        start = len(context)
        picked = [i for i, off in enumerate(offsets) if off >= start and i < len(token_lps)]
        picked = [i for i in picked if offsets[i] < len(context) + len(continuation)]  # not the generated token
        if not picked or any(token_lps[i] is None for i in picked):
            raise UserError(f"{self.base_url}: no log-probabilities for the continuation {continuation[:40]!r}")
        tops = lp.get("top_logprobs") or [None] * len(tokens)
        greedy = all(tops[i] is not None and max(tops[i].values()) <= token_lps[i] + 1e-6 for i in picked)
        return Loglikelihood(float(sum(token_lps[i] for i in picked)), len(picked), greedy)

    def close(self) -> None:
        self.client.close()


class APIError(UserError):
    def __init__(self, status: int, message: str, where: str) -> None:
        super().__init__(f"{where}: HTTP {status}: {message}")
        self.status, self.message = status, message


def _error_message(resp) -> str:
    """OpenAI's error shape is {"error": {"message": ...}}; fall back to the body's start."""
    try:
        body = resp.json()
    except ValueError:
        return resp.text[:300]
    err = body.get("error") if isinstance(body, dict) else None
    if isinstance(err, dict) and err.get("message"):
        return str(err["message"])[:500]
    return str(body)[:300]

"""One batch of requests on one model: render prompts, group compatible requests into
backend calls, and cut each choice to its own request's limits.

Requests that differ only in ``max_tokens`` and ``stop`` share a backend call: the call
generates up to the largest ``max_tokens``, and each choice is then cut at its own
limit, end-of-sequence token and stop strings. That is exact, not an approximation:
decoding is causal, so the first k tokens of a longer generation are the generation of
length k (and in fp32 greedy decoding does not depend on the batch; see the hf backend).
Greedy requests all share one call (identical prompts are generated once). Sampled
requests share a call when their temperature and top_p agree and they give no seed; a
request with a seed runs in its own call, so the same request and seed give the same
answer whatever else is in flight.
"""

from __future__ import annotations

import random
from collections import defaultdict
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Literal

from llmops.eval.backends.base import (
    Generation,
    GenerationParams,
    Prompt,
    TokenLogprob,
    encode_prompt,
    truncate_at_stop,
)
from llmops.serve.errors import ServeError, bad_request
from llmops.serve.host import LoadedModel


@dataclass
class GenRequest:
    """The generation work of one HTTP request (filled in by the worker as it goes)."""

    kind: Literal["completion", "chat"]
    prompts: list[str]  # completion prompts; for chat, empty until rendered
    messages: list[dict[str, str]] | None
    n: int
    max_tokens: int | None
    temperature: float
    top_p: float
    stop: tuple[str, ...]
    seed: int | None
    logprobs: int | None = None  # top alternatives per token; None: no log-probabilities
    echo: bool = False  # completions: return (and score) the prompt too
    future: Future = field(default_factory=Future)
    enqueued_at: float = 0.0  # time.monotonic() when submitted
    # set by `prepare`
    rendered: list[Prompt] = field(default_factory=list)
    prompt_tokens: list[int] = field(default_factory=list)
    budget: int = 0  # effective max_tokens
    window: int = 0  # the model's context length
    used_seed: int | None = None

    @property
    def n_prompts(self) -> int:
        return 1 if self.kind == "chat" else len(self.prompts)

    @property
    def rows(self) -> int:
        return self.n_prompts * self.n

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0


@dataclass
class Choice:
    text: str
    finish_reason: Literal["stop", "length"]
    completion_tokens: int
    token_ids: list[int] = field(default_factory=list)
    prompt_ids: list[int] = field(default_factory=list)  # with echo or logprobs: the prompt's token ids
    logprobs: list[TokenLogprob] | None = None  # the prompt's (echo, from its 2nd token) and the output's


@dataclass
class GenResult:
    model: LoadedModel
    choices: list[list[Choice]]  # per prompt, n each
    prompt_tokens: list[int]
    max_tokens: int
    seed: int | None


def prepare(req: GenRequest, model: LoadedModel, default_max_tokens: int) -> None:
    """Render the prompts with this model's tokenizer and fix the token budget (400 if it cannot fit)."""
    tok = model.backend.tokenizer
    window = req.window = model.backend.max_length
    if req.kind == "chat":
        if not getattr(tok, "chat_template", None):
            raise bad_request(f"model {model.resolved_ref} has no chat template; use /v1/completions", "messages")
        try:
            text = tok.apply_chat_template(req.messages, tokenize=False, add_generation_prompt=True)
        except Exception as exc:  # noqa: BLE001 - jinja raises TemplateError (and others) on unsupported turns
            raise bad_request(f"the model's chat template rejected these messages: {exc}", "messages") from None
        req.rendered = [Prompt(text, add_special_tokens=False)]
    else:
        req.rendered = [Prompt(p, add_special_tokens=True) for p in req.prompts]
    req.prompt_tokens = [len(encode_prompt(tok, p)) for p in req.rendered]
    longest = max(req.prompt_tokens)
    room = window - longest
    if req.max_tokens is not None:
        if req.max_tokens > room:
            raise bad_request(
                f"this model's maximum context length is {window} tokens; the prompt has {longest} tokens and "
                f"max_tokens is {req.max_tokens} (at most {max(room, 0)} fit)", "max_tokens", "context_length_exceeded")
        req.budget = req.max_tokens
    else:
        if room < 1:
            raise bad_request(f"this model's maximum context length is {window} tokens; the prompt has {longest}",
                              "messages" if req.kind == "chat" else "prompt", "context_length_exceeded")
        req.budget = min(default_max_tokens, room)


def group(requests: list[GenRequest], rng: random.Random) -> list[tuple[GenerationParams, list[GenRequest]]]:
    """Split requests into backend calls (see the module docstring), each with its parameters."""
    keyed: dict[Any, list[GenRequest]] = defaultdict(list)
    for i, req in enumerate(requests):
        if req.greedy:
            key: Any = "greedy"
        elif req.seed is not None:
            key = ("seeded", i)
        else:
            key = ("sampled", req.temperature, req.top_p)
        keyed[key].append(req)
    calls = []
    for key, members in keyed.items():
        for part in _fit(members):
            head = part[0]
            if head.greedy:
                seed = None
            elif head.seed is not None:
                seed = head.seed
            else:
                seed = rng.randrange(2**31)  # recorded with each request, so its batch can be replayed
            stops = {r.stop for r in part}
            params = GenerationParams(
                max_new_tokens=max(r.budget for r in part), temperature=head.temperature, top_p=head.top_p,
                stop=stops.pop() if len(stops) == 1 else (), seed=seed or 0,
            )
            for r in part:
                r.used_seed = seed
            calls.append((params, part))
    return calls


def _fit(members: list[GenRequest]) -> list[list[GenRequest]]:
    """Requests whose prompt would not fit beside the call's largest budget get their own call
    (the backend would otherwise cut their prompt from the left)."""
    budget = max(r.budget for r in members)
    window_ok, alone = [], []
    for r in members:
        (window_ok if max(r.prompt_tokens) + budget <= r.window else alone).append(r)
    return ([window_ok] if window_ok else []) + [[r] for r in alone]


def run_call(model: LoadedModel, params: GenerationParams, members: list[GenRequest]) -> tuple[int, int]:
    """Generate for `members` in one backend call and resolve their futures; returns (rows, tokens)."""
    rows: list[Prompt] = []
    index: dict[str, int] = {}
    slots: list[list[list[int]]] = []  # per member, per prompt: the row of each choice
    for req in members:
        per_prompt = []
        for prompt in req.rendered:
            if params.greedy:
                # greedy: every choice of every identical prompt is the same row
                key = f"{int(prompt.add_special_tokens)}:{prompt.text}"
                if key not in index:
                    index[key] = len(rows)
                    rows.append(prompt)
                per_prompt.append([index[key]] * req.n)
            else:
                per_prompt.append(list(range(len(rows), len(rows) + req.n)))
                rows.extend([prompt] * req.n)
        slots.append(per_prompt)
    gens = model.backend.generate(rows, params)
    eos = _eos_ids(model)
    tokens = 0
    for req, per_prompt in zip(members, slots):
        choices = [[finish(model, gens[r], req, eos) for r in prompt_rows] for prompt_rows in per_prompt]
        if req.logprobs is not None or req.echo:
            try:
                attach_logprobs(model, req, choices)
            except ServeError as exc:  # this request only; the others of the call are fine
                fail(req, exc)
                continue
        tokens += sum(c.completion_tokens for cs in choices for c in cs)
        result = GenResult(model, choices, req.prompt_tokens, req.budget, req.used_seed)
        if not req.future.done():
            req.future.set_result(result)
    return len(rows), tokens


def _eos_ids(model: LoadedModel) -> set[int]:
    ids = set(getattr(model.backend, "eos_ids", []) or [])
    if model.backend.tokenizer.eos_token_id is not None:
        ids.add(model.backend.tokenizer.eos_token_id)
    return ids


def finish(model: LoadedModel, gen: Generation, req: GenRequest, eos: set[int]) -> Choice:
    """Cut one generation at this request's max_tokens, end of sequence and stop strings."""
    tok = model.backend.tokenizer
    toks = list(gen.token_ids[: req.budget])
    # The backend ended it (eos not kept in the ids, or a shared stop string) within this request's budget.
    ended = gen.finish_reason in ("eos", "stop") and len(gen.token_ids) <= req.budget
    reason: Literal["stop", "length"] = "stop" if ended else "length"
    for pos, t in enumerate(toks):
        if t in eos:
            toks, reason = toks[: pos + 1], "stop"
            break
    text = tok.decode(toks, skip_special_tokens=True)
    if req.stop:
        cut, stopped = truncate_at_stop(text, req.stop)
        if stopped:
            text, reason = cut, "stop"
            toks = toks[: _tokens_until_stop(tok, toks, req.stop)]
    # A byte-level model can emit a NUL byte; no database stores it. Served == stored.
    return Choice(text.replace("\x00", "\ufffd"), reason, len(toks), toks)


def attach_logprobs(model: LoadedModel, req: GenRequest, choices: list[list[Choice]]) -> None:
    """Score each choice (and, with echo, its prompt) in one forward pass: OpenAI's logprobs/echo."""
    tok = model.backend.tokenizer
    for prompt, per_prompt in zip(req.rendered, choices):
        prompt_ids = encode_prompt(tok, prompt)
        for choice in per_prompt:
            choice.prompt_ids = prompt_ids
            if req.logprobs is None:
                continue
            ids = prompt_ids + choice.token_ids
            start = 1 if req.echo else len(prompt_ids)
            try:
                choice.logprobs = model.backend.token_logprobs(ids, start, req.logprobs)
            except NotImplementedError as exc:
                raise bad_request(f"logprobs: {exc}", "logprobs") from None


def _tokens_until_stop(tok: Any, toks: list[int], stop: tuple[str, ...]) -> int:
    """The fewest leading tokens whose text contains a stop string (the tokens a client was billed)."""
    lo, hi = 1, len(toks)
    while lo < hi:
        mid = (lo + hi) // 2
        if truncate_at_stop(tok.decode(toks[:mid], skip_special_tokens=True), stop)[1]:
            hi = mid
        else:
            lo = mid + 1
    return lo


def fail(req: GenRequest, exc: BaseException) -> None:
    if not req.future.done():
        req.future.set_exception(exc if isinstance(exc, ServeError) else ServeError(500, f"generation failed: {exc}"))

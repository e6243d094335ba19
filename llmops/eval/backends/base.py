"""The narrow, text-level interface every inference backend implements (as lm-eval's `LM`):
`generate`, `loglikelihood` and `loglikelihood_rolling`, on text or chat messages.

`Backend` is all a task needs, so tasks stay independent of backends; an API backend
(`openai`) implements it over HTTP. `TokenBackend` is the shared base of the local
backends (hf, vllm): they receive prompts already rendered with the model's chat
template and tokenise them with the model's own HF tokenizer through the helpers here,
so both see the same token ids. Log-likelihood requests follow lm-evaluation-harness
conventions: trailing whitespace of the context moves to the continuation, an empty
context conditions on a prefix token (BOS, else EOS), and a long text is scored in
disjoint windows.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class GenerationParams:
    """Everything that decides a decoded output. Backends set every decoding field of their
    engine from this (neutral values where it says nothing), never from the checkpoint's
    ``generation_config.json``: a checkpoint that ships ``repetition_penalty``, n-gram
    blocking or beams is still decoded exactly as the suite says."""

    max_new_tokens: int = 64
    temperature: float = 0.0
    top_p: float = 1.0
    stop: tuple[str, ...] = ()
    seed: int = 0
    top_k: int = 0  # 0: no top-k cut (sampling only)
    repetition_penalty: float = 1.0
    ignore_eos: bool = False  # fixed-length decoding (speed measurements)

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0

    def as_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        return {**asdict(self), "stop": list(self.stop), "greedy": self.greedy}


@dataclass(frozen=True)
class Prompt:
    """A prompt as text (rendered with the chat template for chat suites) and, for chat
    suites, as the messages it was rendered from: an API backend sends those and lets the
    server apply its own template."""

    text: str
    add_special_tokens: bool = True
    messages: tuple[tuple[str, str], ...] | None = None  # ((role, content), ...)

    def message_dicts(self) -> list[dict[str, str]]:
        return [{"role": r, "content": c} for r, c in self.messages or ()]


@dataclass
class Generation:
    text: str
    token_ids: list[int]
    latency_s: float  # wall time of the batch that served this request
    finish_reason: str = "length"  # "eos", "stop", "length"


@dataclass
class Loglikelihood:
    logprob: float  # sum of the continuation's token log-probabilities
    n_tokens: int
    greedy: bool  # every continuation token was the argmax


@dataclass
class TokenLogprob:
    """One token of a sequence: its log-probability given what precedes it, and the top alternatives."""

    token_id: int
    logprob: float
    top: list[tuple[int, float]] = field(default_factory=list)


@dataclass
class BackendStats:
    """Accumulated timings of one backend instance."""

    generated_tokens: int = 0
    generate_seconds: float = 0.0
    scored_tokens: int = 0
    score_seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)


def context_window(model_max: int, requested: int | None = None) -> int:
    """Tokens a backend may put in one sequence: the model's window less two positions, so
    that vLLM (prompt incl. the scored token, plus one generated) fits too and every
    backend scores long texts with the same windows."""
    return max(2, min(requested or model_max, model_max - 2))


def truncate_at_stop(text: str, stop: tuple[str, ...]) -> tuple[str, bool]:
    """Cut `text` before the earliest stop string (the stop string itself is dropped)."""
    cut = min((i for i in (text.find(s) for s in stop) if i >= 0), default=-1)
    return (text[:cut], True) if cut >= 0 else (text, False)


def encode_prompt(tokenizer: Any, prompt: Prompt) -> list[int]:
    return tokenizer(prompt.text, add_special_tokens=prompt.add_special_tokens)["input_ids"]


def prefix_token(tokenizer: Any) -> int:
    """Token that conditions the first token of an unconditioned text."""
    for tid in (tokenizer.bos_token_id, tokenizer.eos_token_id):
        if tid is not None:
            return tid
    raise ValueError("tokenizer has neither a BOS nor an EOS token to condition on")


def encode_pair(tokenizer: Any, context: str, continuation: str, add_special_tokens: bool = True) -> tuple[list[int], list[int]]:
    """Token ids of (context, continuation), split so that the continuation tokens are those
    the model must predict. Encodes the concatenation once, so merges across the boundary
    are tokenised as the model would see them."""
    spaces = len(context) - len(context.rstrip())
    if spaces:
        context, continuation = context[:-spaces], context[-spaces:] + continuation
    if not context:
        ids = tokenizer(continuation, add_special_tokens=False)["input_ids"]
        return [prefix_token(tokenizer)], ids
    whole = tokenizer(context + continuation, add_special_tokens=add_special_tokens)["input_ids"]
    ctx = tokenizer(context, add_special_tokens=add_special_tokens)["input_ids"]
    n = len(ctx)
    if whole[:n] != ctx:  # a merge across the boundary: fall back to separate encodings
        cont = tokenizer(continuation, add_special_tokens=False)["input_ids"]
        return ctx, cont
    return ctx, whole[n:]


def rolling_windows(
    context: list[int], tokens: list[int], max_length: int, stride: int | None = None
) -> list[tuple[list[int], list[int]]]:
    """Windows covering `tokens`, each predicting its tokens once, as (context, continuation).

    ``stride=None`` reproduces lm-evaluation-harness's rolling log-likelihood
    (``get_rolling_token_windows`` with ``context_len=1`` + ``make_disjoint_window``): the
    first window is conditioned on `context`, each later one predicts up to `max_length`
    new tokens and sees every earlier token that still fits in the window — one token for
    a full window, more for the last, shorter one. With ``stride=s`` (1 <= s <= max_length)
    each later window predicts `s` new tokens after ``max_length + 1 - s`` tokens of
    context (the sliding-window perplexity of the transformers docs): smaller strides give
    every prediction more context and cost more forward passes.
    """
    if stride is not None and not 1 <= stride <= max_length:
        raise ValueError(f"stride must be between 1 and the window ({max_length}), got {stride}")
    step = stride or max_length
    first = min(max_length, len(tokens))
    windows = [(context, tokens[:first])] if tokens else []
    done = first
    while done < len(tokens):
        end = min(done + step, len(tokens))
        start_ctx = max(0, end - max_length - 1)
        windows.append((tokens[start_ctx:done], tokens[done:end]))
        done = end
    return windows


class Backend(ABC):
    """An inference engine for one model, at the level of text."""

    name: str = "base"
    needs_rendered_prompts: bool = True  # False: the backend takes chat messages (the server renders them)

    def __init__(self) -> None:
        self.stats = BackendStats()

    @abstractmethod
    def generate(self, prompts: list[Prompt], params: GenerationParams) -> list[Generation]:
        """One generation per prompt, in the order given."""

    @abstractmethod
    def loglikelihood(self, requests: list[tuple[Prompt, str]]) -> list[Loglikelihood]:
        """log P(continuation | context) for each (context prompt, continuation) pair."""

    def effective_generation_config(self, params: GenerationParams) -> dict[str, Any]:
        """The decoding configuration the engine runs with (recorded in results.json)."""
        return {"engine": self.name, "config": params.as_dict(), "checkpoint_overridden": {}}

    def reset_peak_memory(self) -> None:
        """Start a new peak-memory measurement (accelerators; RSS peaks are per process)."""

    def loglikelihood_rolling(self, texts: list[str], stride: int | None = None) -> list[Loglikelihood]:
        """log P(text) of each whole text (perplexity), in windows when it is long (see `rolling_windows`)."""
        if stride is not None:
            raise NotImplementedError(f"the {self.name} backend has no stride option")
        return self.loglikelihood([(Prompt("", False), t) for t in texts])

    def peak_memory_mb(self) -> dict[str, float]:
        """Peak memory so far: process RSS, and accelerator memory where there is one."""
        import resource
        import sys

        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        peak = {"peak_rss_mb": rss / (1024 * 1024 if sys.platform == "darwin" else 1024)}
        return peak

    def close(self) -> None:
        """Release the model."""


class TokenBackend(Backend):
    """A local model with its HF tokenizer: the base of the hf and vllm backends."""

    tokenizer: Any
    max_length: int

    @abstractmethod
    def score_tokens(self, pairs: list[tuple[list[int], list[int]]]) -> list[Loglikelihood]:
        """Log-likelihood of each continuation token list given its context token list."""

    def token_logprobs(self, ids: list[int], start: int, top_k: int = 0) -> list[TokenLogprob]:
        """Per-token log-probabilities of ``ids[start:]`` (start >= 1) and their `top_k` alternatives.

        What serving needs for OpenAI's ``logprobs`` and ``echo``; backends that cannot
        score a sequence say so.
        """
        raise NotImplementedError(f"the {self.name} backend does not return per-token log-probabilities")

    def loglikelihood(self, requests: list[tuple[Prompt, str]], stride: int | None = None) -> list[Loglikelihood]:
        """log P(continuation | context) for each (context prompt, continuation) pair.

        An empty context scores the continuation as a whole text (perplexity); texts
        longer than the context window are scored in rolling windows (`rolling_windows`).
        """
        pairs: list[tuple[list[int], list[int]]] = []
        spans: list[tuple[int, int]] = []
        for i, (ctx, cont) in enumerate(requests):
            c_ids, t_ids = encode_pair(self.tokenizer, ctx.text, cont, ctx.add_special_tokens)
            if not t_ids:
                raise ValueError(f"request {i}: the continuation is empty after tokenisation")
            windows = rolling_windows(c_ids, t_ids, self.max_length, stride)
            spans.append((len(pairs), len(pairs) + len(windows)))
            pairs.extend(windows)
        scored = self.score_tokens(pairs)
        out = []
        for a, b in spans:
            parts = scored[a:b]
            out.append(Loglikelihood(sum(p.logprob for p in parts), sum(p.n_tokens for p in parts), all(p.greedy for p in parts)))
        return out

    def loglikelihood_rolling(self, texts: list[str], stride: int | None = None) -> list[Loglikelihood]:
        return self.loglikelihood([(Prompt("", False), t) for t in texts], stride=stride)

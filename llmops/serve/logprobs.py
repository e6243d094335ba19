"""OpenAI's log-probability formats from token ids: completions' legacy lists and chat's objects.

Token strings and text offsets come from decoding growing prefixes of the sequence, so they
line up with the returned text even for byte-level tokens that are only part of a character.
"""

from __future__ import annotations

from typing import Any

from llmops.eval.backends.base import TokenLogprob
from llmops.serve.schemas import ChatLogprobs, CompletionLogprobs, TokenLogprob as TokenLogprobOut, TopLogprob


def _pieces(tok: Any, ids: list[int], first: int) -> tuple[list[str], list[int]]:
    """Text of each token of ``ids[first:]`` and its offset in the decoded text of all ``ids``."""
    before = len(tok.decode(ids[:first], skip_special_tokens=True)) if first else 0
    ends = [len(tok.decode(ids[: i + 1], skip_special_tokens=True)) for i in range(first, len(ids))]
    full = tok.decode(ids, skip_special_tokens=True)
    starts = [before] + ends[:-1]
    return [full[a:b] for a, b in zip(starts, ends)], starts


def completion_logprobs(tok: Any, choice: Any, echo: bool, prompt_text: str, top_k: int) -> CompletionLogprobs | None:
    """`logprobs` of one completion choice (with echo: the prompt's tokens first, the first one null)."""
    if choice.logprobs is None:
        return None
    if echo:
        ids, first = choice.prompt_ids + choice.token_ids, 0
        scored: list[TokenLogprob | None] = [None] + list(choice.logprobs)
        base = 0
    else:
        ids, first = choice.prompt_ids + choice.token_ids, len(choice.prompt_ids)
        scored = list(choice.logprobs)
        base = len(prompt_text) - len(tok.decode(choice.prompt_ids, skip_special_tokens=True))
    tokens, offsets = _pieces(tok, ids, first)
    top = None
    if top_k:
        top = [None if s is None else {tok.decode([t]): lp for t, lp in s.top} for s in scored]
    return CompletionLogprobs(tokens=tokens, token_logprobs=[None if s is None else s.logprob for s in scored],
                              top_logprobs=top, text_offset=[base + o for o in offsets])


def chat_logprobs(tok: Any, choice: Any) -> ChatLogprobs | None:
    if choice.logprobs is None:
        return None
    ids = choice.prompt_ids + choice.token_ids
    tokens, _ = _pieces(tok, ids, len(choice.prompt_ids))
    content = []
    for text, s in zip(tokens, choice.logprobs):
        alts = [TopLogprob(token=tok.decode([t]), logprob=lp, bytes=list(tok.decode([t]).encode())) for t, lp in s.top]
        content.append(TokenLogprobOut(token=text, logprob=s.logprob, bytes=list(text.encode()), top_logprobs=alts))
    return ChatLogprobs(content=content)

"""`stream: true`: the finished answer as OpenAI's server-sent-event chunks.

The micro-batcher generates a batch as a whole, so the chunks are sent when the batch is
done — clients that stream get OpenAI's wire format (a role chunk, content deltas, a
finish chunk per choice, an optional usage chunk, ``data: [DONE]``), not an earlier
first token. The llmops extension (feedback ids, model version) rides on the last chunk
of each choice. The answer was recorded for feedback before the first byte is sent.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

_WORDS = re.compile(r"\s*\S+|\s+")


def _sse(obj: dict[str, Any] | str) -> str:
    return f"data: {obj if isinstance(obj, str) else json.dumps(obj, ensure_ascii=False)}\n\n"


def sse_chunks(out: dict[str, Any], kind: str, include_usage: bool) -> Iterator[str]:
    head = {"id": out["id"], "created": out["created"], "model": out["model"],
            "system_fingerprint": out["system_fingerprint"],
            "object": "chat.completion.chunk" if kind == "chat" else "text_completion"}
    for choice in out["choices"]:
        k = choice["index"]
        text = choice["message"]["content"] if kind == "chat" else choice["text"]
        if kind == "chat":
            yield _sse({**head, "choices": [{"index": k, "delta": {"role": "assistant", "content": ""},
                                             "logprobs": None, "finish_reason": None}]})
        for piece in _WORDS.findall(text):
            delta = {"delta": {"content": piece}} if kind == "chat" else {"text": piece}
            yield _sse({**head, "choices": [{"index": k, **delta, "logprobs": None, "finish_reason": None}]})
        last = {"delta": {}} if kind == "chat" else {"text": ""}
        yield _sse({**head, "choices": [{"index": k, **last, "logprobs": choice.get("logprobs"),
                                         "finish_reason": choice["finish_reason"]}],
                    "llmops": {**out["llmops"], "response_id": choice["response_id"], "item_id": choice["item_id"]}})
    if include_usage:
        yield _sse({**head, "choices": [], "usage": out["usage"]})
    yield _sse("[DONE]")

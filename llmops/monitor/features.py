"""Reading prompt files and turning prompts into tokens for drift features.

Without a model the tokenizer is a deterministic word/punctuation splitter (lower-cased);
with ``--model REF`` it is that model's own tokenizer, so lengths are the lengths the
model sees.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from llmops.errors import DataError

Tokenize = Callable[[str], list[str]]
_WORD_RE = re.compile(r"\w+|[^\w\s]", re.UNICODE)


def simple_tokenize(text: str) -> list[str]:
    return _WORD_RE.findall(text.lower())


def make_tokenizer(spec: dict[str, Any]) -> Tokenize:
    """Rebuild the tokenizer a profile was fitted with: {"kind": "simple"} or {"kind": "hf", "ref": ...}."""
    if spec.get("kind", "simple") == "simple":
        return simple_tokenize
    if spec["kind"] == "hf":
        from llmops.models.loading import load_tokenizer

        tok = load_tokenizer(spec["ref"])

        def hf_tokenize(text: str) -> list[str]:
            return tok.convert_ids_to_tokens(tok(text, add_special_tokens=False)["input_ids"])

        return hf_tokenize
    raise DataError(f"unknown tokenizer kind {spec['kind']!r} in drift profile")


def tokenizer_spec(model_ref: str | None) -> dict[str, Any]:
    return {"kind": "hf", "ref": model_ref} if model_ref else {"kind": "simple"}


def _prompt_of(obj: Any, where: str) -> str:
    if isinstance(obj, str):
        return obj
    if isinstance(obj, dict):
        for key in ("prompt", "text", "input", "question"):
            if isinstance(obj.get(key), str):
                return obj[key]
        if isinstance(obj.get("messages"), list):
            user = [m.get("content", "") for m in obj["messages"] if isinstance(m, dict) and m.get("role") == "user"]
            return "\n".join(user)
    raise DataError(f"{where}: expected a string or an object with `prompt`, `text` or `messages`")


def _ts(obj: Any) -> datetime | None:
    ts = obj.get("ts") if isinstance(obj, dict) else None
    try:
        at = (datetime.fromtimestamp(float(ts), timezone.utc) if isinstance(ts, (int, float))
              else datetime.fromisoformat(ts) if isinstance(ts, str) else None)
    except (ValueError, OverflowError):
        return None
    return at.replace(tzinfo=timezone.utc) if at is not None and at.tzinfo is None else at


def read_prompts(path: str | Path) -> list[str]:
    """Prompts from a JSONL file (strings or objects with prompt/text/messages) or plain text lines."""
    return [p for p, _ in read_prompt_records(path)]


def read_prompt_records(path: str | Path) -> list[tuple[str, datetime | None]]:
    """(prompt, timestamp or None) per record: JSONL records may carry `ts` (ISO-8601 or epoch seconds)."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise DataError(f"cannot read prompts file {path}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text ({exc.reason})") from None
    is_jsonl = path.suffix in {".jsonl", ".ndjson"}
    prompts = []
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        if is_jsonl:
            try:
                obj = json.loads(line)
            except ValueError as exc:
                raise DataError(f"{path}:{i}: invalid JSON ({exc.msg})") from None
            prompts.append((_prompt_of(obj, f"{path}:{i}"), _ts(obj)))
        else:
            prompts.append((line, None))
    if not prompts:
        raise DataError(f"{path}: no prompts")
    return prompts

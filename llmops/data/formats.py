"""Record formats and their conversion to chat messages.

Four formats, recognised by their columns (TRL's names, so TRL datasets load as is):

- ``prompt_completion``: ``prompt`` + ``completion`` (strings, or message lists: TRL's
  conversational prompt-completion);
- ``chat``: ``messages``, a list of ``{"role", "content"}``;
- ``preference``: ``chosen`` + ``rejected`` with an optional ``prompt``. Strings, or
  message lists; without ``prompt`` (TRL's implicit-prompt form) the shared leading
  messages of chosen and rejected are the prompt;
- ``text``: ``text`` (plain language modelling, every token trained).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Literal

from llmops.errors import DataError

Format = Literal["prompt_completion", "chat", "preference", "text"]
Message = dict[str, str]
FORMATS: tuple[str, ...] = ("prompt_completion", "chat", "preference", "text")


def record_format(record: dict[str, Any], where: str = "record") -> Format:
    """The format of one record, from its keys (preference wins over prompt/completion)."""
    keys = set(record)
    if {"chosen", "rejected"} <= keys:
        return "preference"
    if "messages" in keys:
        return "chat"
    if {"prompt", "completion"} <= keys:
        return "prompt_completion"
    if "text" in keys:
        return "text"
    raise DataError(
        f"{where}: cannot tell the format from columns {sorted(keys)}; expected prompt+completion, "
        "messages, chosen+rejected (+prompt) or text"
    )


def detect_format(records: list[dict[str, Any]]) -> Format:
    """The format shared by all records; a record of another format is an error naming it."""
    if not records:
        raise DataError("no records to detect a format from")
    fmt = record_format(records[0], "record 1")
    for i, rec in enumerate(records[1:], 2):
        other = record_format(rec, f"record {i}")
        if other != fmt:
            raise DataError(f"record {i}: format {other}, but record 1 is {fmt}; a dataset has one format")
    return fmt


def _check_messages(value: Any, where: str) -> list[Message]:
    if not isinstance(value, list) or not value:
        raise DataError(f"{where}: expected a non-empty list of {{role, content}} messages")
    for j, m in enumerate(value):
        if not isinstance(m, dict) or not isinstance(m.get("role"), str) or not isinstance(m.get("content"), str):
            raise DataError(f"{where}[{j}]: expected {{\"role\": str, \"content\": str}}, got {m!r:.80}")
    return [{"role": m["role"], "content": m["content"]} for m in value]


def _as_turns(value: Any, role: str, where: str) -> list[Message]:
    """A string becomes one message of `role`; a message list is validated and returned."""
    if isinstance(value, str):
        return [{"role": role, "content": value}]
    return _check_messages(value, where)


def to_messages(record: dict[str, Any], where: str = "record") -> list[Message]:
    """The conversation a record trains on (for preference records: the chosen one)."""
    fmt = record_format(record, where)
    if fmt == "chat":
        return _check_messages(record["messages"], f"{where}.messages")
    if fmt == "prompt_completion":
        return _as_turns(record["prompt"], "user", f"{where}.prompt") + _as_turns(
            record["completion"], "assistant", f"{where}.completion"
        )
    if fmt == "preference":
        prompt, chosen, _ = preference_messages(record, where)
        return prompt + chosen
    raise DataError(f"{where}: `text` records have no roles; train them with the text format (no chat template)")


def preference_messages(record: dict[str, Any], where: str = "record") -> tuple[list[Message], list[Message], list[Message]]:
    """(prompt, chosen, rejected) message lists of a preference record, in any TRL variant."""
    if record_format(record, where) != "preference":
        raise DataError(f"{where}: not a preference record (needs chosen and rejected)")
    chosen = _as_turns(record["chosen"], "assistant", f"{where}.chosen")
    rejected = _as_turns(record["rejected"], "assistant", f"{where}.rejected")
    if record.get("prompt") is not None:
        return _as_turns(record["prompt"], "user", f"{where}.prompt"), chosen, rejected
    n = 0  # implicit prompt: the common leading messages
    while n < min(len(chosen), len(rejected)) - 1 and chosen[n] == rejected[n]:
        n += 1
    if n == 0:
        raise DataError(f"{where}: no prompt column and chosen/rejected share no leading messages")
    return chosen[:n], chosen[n:], rejected[n:]


def dataset_fingerprint(records: list[dict[str, Any]]) -> str:
    """sha256 of the canonical JSON of the records (key order independent), for lineage."""
    digest = hashlib.sha256()
    for rec in records:
        digest.update(json.dumps(rec, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str).encode())
        digest.update(b"\n")
    return digest.hexdigest()

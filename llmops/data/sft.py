"""SFT tokenisation with label masking that works with any chat template.

Which tokens are the assistant's is found by rendering message *prefixes* and diffing
token ids, not by parsing one template's markers: the tokens between "the
conversation up to this turn + generation prompt" and "the conversation including this
turn" are the assistant's content and its end-of-turn token. Anything a template emits
after the end-of-turn token (Qwen's trailing newline) is not trained. Masking is by
position, never by token value, so it is right when pad == eos.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import Any

from llmops.data.formats import record_format, to_messages
from llmops.errors import DataError

log = logging.getLogger(__name__)
IGNORE = -100


@dataclass
class SFTStats:
    """What happened to the records on the way to training examples."""

    n_records: int = 0
    n_examples: int = 0
    n_dropped: int = 0  # every supervised token truncated away
    n_truncated: int = 0  # kept, but cut at max_length
    n_tokens: int = 0
    n_supervised_tokens: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def _render(tokenizer, messages: list[dict], add_generation_prompt: bool) -> list[int]:
    ids = tokenizer.apply_chat_template(
        messages, tokenize=True, add_generation_prompt=add_generation_prompt, return_dict=False
    )
    if ids and isinstance(ids[0], list):  # some tokenizers return a batch of one
        ids = ids[0]
    return list(ids)


def _common_prefix(a: list[int], b: list[int]) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


def _trim_after_end_of_turn(start: int, end: int, ids: list[int], special: set[int], tokenizer) -> int:
    """Cut whitespace a template emits after the turn's last special token (e.g. Qwen's "\\n")."""
    for j in range(end - 1, start - 1, -1):
        if ids[j] in special:
            tail = ids[j + 1 : end]
            return j + 1 if tail and not tokenizer.decode(tail).strip() else end
    return end


def chat_labels(messages: list[dict], tokenizer) -> tuple[list[int], list[int]]:
    """Token ids of the rendered conversation and labels training only assistant turns."""
    if not getattr(tokenizer, "chat_template", None):
        raise DataError(
            "the tokenizer has no chat template; set data.chat_template: false (prompt/completion and text "
            "records then train without one) or use a model that has one"
        )
    full = _render(tokenizer, messages, add_generation_prompt=False)
    labels = [IGNORE] * len(full)
    special = set(tokenizer.all_special_ids) - {tokenizer.pad_token_id} | {tokenizer.eos_token_id}
    for i, msg in enumerate(messages):
        if msg["role"] != "assistant":
            continue
        start = _common_prefix(full, _render(tokenizer, messages[:i], add_generation_prompt=True)) if i else 0
        end = _common_prefix(full, _render(tokenizer, messages[: i + 1], add_generation_prompt=False))
        end = _trim_after_end_of_turn(start, end, full, special, tokenizer)
        labels[start:end] = full[start:end]
    return full, labels


def plain_labels(record: dict[str, Any], tokenizer, fmt: str) -> tuple[list[int], list[int]]:
    """No chat template: text trains every token; prompt/completion concatenates and trains the completion."""
    eos = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
    if fmt == "text":
        ids = tokenizer(record["text"], add_special_tokens=True)["input_ids"] + eos
        return ids, list(ids)
    if fmt == "prompt_completion" and isinstance(record["prompt"], str) and isinstance(record["completion"], str):
        prompt = tokenizer(record["prompt"], add_special_tokens=True)["input_ids"]
        completion = tokenizer(record["completion"], add_special_tokens=False)["input_ids"] + eos
        return prompt + completion, [IGNORE] * len(prompt) + completion
    raise DataError(f"{fmt} records need a chat template (data.chat_template: true)")


def sft_ids(record: dict[str, Any], tokenizer, chat_template: bool = True) -> tuple[list[int], list[int]]:
    """Untruncated (input_ids, labels) of one record."""
    fmt = record_format(record)
    if chat_template and fmt != "text":
        return chat_labels(to_messages(record), tokenizer)
    return plain_labels(record, tokenizer, fmt)


def _truncate(ids: list[int], labels: list[int], max_length: int) -> dict[str, list[int]] | None:
    ids, labels = ids[:max_length], labels[:max_length]
    if all(label == IGNORE for label in labels):
        return None
    return {"input_ids": ids, "labels": labels}


def tokenize_sft(
    record: dict[str, Any], tokenizer, max_length: int, chat_template: bool = True
) -> dict[str, list[int]] | None:
    """``{"input_ids", "labels"}`` for one record, truncated to `max_length` (right side).

    Returns None when truncation removed every supervised token (the caller counts it).
    """
    return _truncate(*sft_ids(record, tokenizer, chat_template), max_length)


def build_sft_examples(
    records: list[dict[str, Any]], tokenizer, max_length: int, chat_template: bool = True
) -> tuple[list[dict[str, list[int]]], SFTStats]:
    """Tokenise all records; drops (and counts) those with no supervised token left.

    Raises DataError when every record is dropped: training on nothing is a bug, not a run.
    """
    from tqdm.auto import tqdm

    stats = SFTStats(n_records=len(records))
    examples = []
    bar = tqdm(records, desc="tokenizing", unit="rec", disable=None if len(records) > 2000 else True)
    for i, rec in enumerate(bar):
        try:
            ids, labels = sft_ids(rec, tokenizer, chat_template)
        except DataError as exc:
            raise DataError(f"record {i + 1}: {exc}") from None
        ex = _truncate(ids, labels, max_length)
        if ex is None:
            stats.n_dropped += 1
            continue
        stats.n_truncated += int(len(ids) > max_length)
        stats.n_examples += 1
        stats.n_tokens += len(ex["input_ids"])
        stats.n_supervised_tokens += sum(label != IGNORE for label in ex["labels"])
        examples.append(ex)
    if not examples:
        raise DataError(
            f"all {stats.n_records} records were dropped: no supervised (completion/assistant) token fits in "
            f"max_length={max_length}; raise data.max_length or shorten the prompts"
        )
    if stats.n_dropped:
        log.warning("dropped %d of %d records whose supervised tokens were all truncated", stats.n_dropped, stats.n_records)
    return examples, stats

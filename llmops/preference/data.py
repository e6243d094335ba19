"""Preference data: records → token ids with completion masks → one [chosen; rejected] batch.

Accepted records (TRL's preference formats and `llmops feedback export` rows):

- plain: ``{"prompt": str, "chosen": str, "rejected": str}`` (+ optional margin column);
- conversational: ``prompt`` a list of messages, ``chosen``/``rejected`` lists with the
  assistant turn(s);
- implicit prompt: no ``prompt``; ``chosen``/``rejected`` are whole conversations and
  their common leading messages are the prompt.

With a chat template, the completion tokens are found by rendering the prompt (with the
generation prompt) and the whole conversation and taking the difference, so any
model's template works, including its end-of-turn token. Without one, the prompt is
tokenised as text and the completion gets the tokenizer's eos appended.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Sequence

from llmops.errors import DataError

if TYPE_CHECKING:
    from pathlib import Path

    from llmops.config.schema import Recipe

log = logging.getLogger(__name__)

Messages = list[dict[str, Any]]
Text = str | Messages


@dataclass
class PairStats:
    """How many records became examples, and how many were truncated to fit."""

    n_records: int = 0
    n_examples: int = 0
    n_truncated: int = 0


def _is_messages(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(m, dict) and "role" in m and "content" in m for m in value)


def split_record(record: dict[str, Any], where: str = "record") -> tuple[Text, Text, Text]:
    """(prompt, chosen, rejected) of a preference record in any supported format."""
    missing = [k for k in ("chosen", "rejected") if k not in record]
    if missing:
        raise DataError(f"{where}: preference record needs `chosen` and `rejected` (missing {', '.join(missing)})")
    chosen, rejected = record["chosen"], record["rejected"]
    if "prompt" not in record:
        if not (_is_messages(chosen) and _is_messages(rejected)):
            raise DataError(f"{where}: without `prompt`, chosen/rejected must be message lists (implicit prompt)")
        n = 0
        while n < min(len(chosen), len(rejected)) - 1 and chosen[n] == rejected[n]:
            n += 1
        return chosen[:n], chosen[n:], rejected[n:]
    prompt = record["prompt"]
    for key, value in (("prompt", prompt), ("chosen", chosen), ("rejected", rejected)):
        if not (isinstance(value, str) or _is_messages(value)):
            raise DataError(f"{where}: `{key}` must be a string or a list of {{role, content}} messages")
    return prompt, chosen, rejected


class PairTokenizer:
    """Tokenises (prompt, completion) pairs the same way for DPO, reward models and RLOO."""

    def __init__(self, tokenizer, max_length: int, chat_template: bool = True) -> None:
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.use_template = chat_template and bool(getattr(tokenizer, "chat_template", None))

    def _render(self, messages: Messages, generation_prompt: bool) -> list[int]:
        ids = self.tokenizer.apply_chat_template(
            messages, tokenize=True, add_generation_prompt=generation_prompt, return_dict=False
        )
        return list(ids)

    @staticmethod
    def _as_messages(value: Text, role: str) -> Messages:
        return value if isinstance(value, list) else [{"role": role, "content": value}]

    def prompt_ids(self, prompt: Text) -> list[int]:
        """Token ids of a prompt, ready for generation (chat generation prompt included)."""
        if self.use_template or isinstance(prompt, list):
            return self._render(self._as_messages(prompt, "user"), generation_prompt=True)
        return list(self.tokenizer(prompt, add_special_tokens=True)["input_ids"])

    def encode(self, prompt: Text, completions: Sequence[Text]) -> tuple[list[int], list[list[int]]]:
        """(prompt ids, completion ids per completion), untruncated."""
        if self.use_template or isinstance(prompt, list):
            p_msgs = self._as_messages(prompt, "user")
            prompt_ids = self._render(p_msgs, generation_prompt=True)
            fulls = [self._render(p_msgs + self._as_messages(c, "assistant"), False) for c in completions]
            # Templates may rewrite earlier turns once an answer follows: split at the common prefix.
            cut = len(prompt_ids)
            for full in fulls:
                n = 0
                while n < min(cut, len(full)) and full[n] == prompt_ids[n]:
                    n += 1
                cut = n
            return prompt_ids[:cut], [full[cut:] for full in fulls]
        if any(isinstance(c, list) for c in completions):
            raise DataError("a plain-text prompt needs plain-text completions")
        eos = self.tokenizer.eos_token_id
        prompt_ids = list(self.tokenizer(prompt, add_special_tokens=True)["input_ids"])
        comps = [list(self.tokenizer(c, add_special_tokens=False)["input_ids"]) + [eos] for c in completions]
        return prompt_ids, comps

    def fit(self, prompt_ids: list[int], completions: list[list[int]]) -> tuple[list[int], list[list[int]], bool]:
        """Truncate to `max_length`: the prompt loses its *start* (down to half the budget), completions their end."""
        longest = max(len(c) for c in completions)
        if len(prompt_ids) + longest <= self.max_length:
            return prompt_ids, completions, False
        keep_prompt = min(len(prompt_ids), max(self.max_length // 2, self.max_length - longest))
        prompt_ids = prompt_ids[len(prompt_ids) - keep_prompt :]
        budget = self.max_length - len(prompt_ids)
        return prompt_ids, [c[:budget] for c in completions], True

    def pair(self, record: dict[str, Any], where: str = "record", margin_column: str | None = None) -> tuple[dict, bool]:
        """One preference example: prompt/chosen/rejected ids (+ margin)."""
        prompt, chosen, rejected = split_record(record, where)
        prompt_ids, comps = self.encode(prompt, [chosen, rejected])
        prompt_ids, (c_ids, r_ids), truncated = self.fit(prompt_ids, comps)
        if not c_ids or not r_ids:
            raise DataError(f"{where}: empty completion after tokenisation")
        example: dict[str, Any] = {"prompt_ids": prompt_ids, "chosen_ids": c_ids, "rejected_ids": r_ids}
        if margin_column:
            if margin_column not in record:
                raise DataError(f"{where}: margin column `{margin_column}` missing (reward.margin_column)")
            try:
                example["margin"] = float(record[margin_column])
            except (TypeError, ValueError):
                raise DataError(f"{where}: `{margin_column}` must be a number, got {record[margin_column]!r}") from None
        return example, truncated

    def single(self, prompt: Text, response: Text) -> dict[str, list[int]]:
        """One (prompt, response) sequence for scoring: input ids and completion mask."""
        prompt_ids, (comp,) = self.encode(prompt, [response])
        prompt_ids, (comp,), _ = self.fit(prompt_ids, [comp])
        return {"input_ids": prompt_ids + comp, "completion_mask": [0] * len(prompt_ids) + [1] * len(comp)}


def build_pair_examples(
    records: Sequence[dict[str, Any]],
    tokenizer,
    max_length: int,
    chat_template: bool = True,
    margin_column: str | None = None,
    source: str = "data",
) -> tuple[list[dict[str, Any]], PairStats]:
    """Tokenise every record; errors name `source` and the row number (1-based)."""
    pt = PairTokenizer(tokenizer, max_length, chat_template)
    stats = PairStats(n_records=len(records))
    examples = []
    for i, record in enumerate(records):
        example, truncated = pt.pair(record, f"{source}: row {i + 1}", margin_column)
        stats.n_truncated += int(truncated)
        examples.append(example)
    stats.n_examples = len(examples)
    if not examples:
        raise DataError(f"{source}: no preference pairs")
    return examples, stats


def _pad(rows: list[list[int]], value: int, side: str) -> list[list[int]]:
    width = max(len(r) for r in rows)
    return [(r + [value] * (width - len(r))) if side == "right" else ([value] * (width - len(r)) + r) for r in rows]


def collate_sequences(seqs: list[dict[str, list[int]]], pad_token_id: int, padding_side: str = "right") -> dict:
    """Pad `{input_ids, completion_mask}` rows into tensors (+ attention_mask)."""
    import torch

    if padding_side not in {"right", "left"}:
        raise ValueError(f"padding_side must be right or left, got {padding_side!r}")
    ids = [s["input_ids"] for s in seqs]
    return {
        "input_ids": torch.tensor(_pad(ids, pad_token_id, padding_side), dtype=torch.long),
        "attention_mask": torch.tensor(_pad([[1] * len(r) for r in ids], 0, padding_side), dtype=torch.long),
        "completion_mask": torch.tensor(_pad([s["completion_mask"] for s in seqs], 0, padding_side), dtype=torch.long),
    }


class PairCollator:
    """Pairs → one batch of 2B rows: all chosen rows, then all rejected rows.

    One forward pass over both halves halves the number of kernel launches and keeps
    chosen and rejected under identical numerics (same padding width, same batch).
    """

    def __init__(self, pad_token_id: int, padding_side: str = "right") -> None:
        self.pad_token_id = pad_token_id
        self.padding_side = padding_side

    def __call__(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
        import torch

        seqs = []
        for key in ("chosen_ids", "rejected_ids"):
            for ex in examples:
                p, c = ex["prompt_ids"], ex[key]
                seqs.append({"input_ids": p + c, "completion_mask": [0] * len(p) + [1] * len(c)})
        batch = collate_sequences(seqs, self.pad_token_id, self.padding_side)
        for key in ("margin", "ref_chosen_logps", "ref_rejected_logps"):
            if all(key in ex for ex in examples):
                batch[key] = torch.tensor([ex[key] for ex in examples], dtype=torch.float32)
        return batch


@dataclass
class PreferenceSplits:
    train: list[dict[str, Any]]
    validation: list[dict[str, Any]] | None
    fingerprints: dict[str, str] = field(default_factory=dict)
    feedback_snapshot_id: str | None = None
    stats: dict[str, Any] = field(default_factory=dict)


def load_preference_splits(
    recipe: "Recipe", tokenizer, margin_column: str | None = None, cache_dir: "Path | None" = None
) -> PreferenceSplits:
    """Load `recipe.data` (feedback export JSONL or TRL preference data) and tokenise it
    (once per run with `cache_dir`, see `llmops.data.token_cache`)."""
    from llmops.data.splits import load_splits
    from llmops.data.token_cache import cache_key, load_or_build, tokenizer_fingerprint

    data = recipe.data
    splits = load_splits(data, recipe.train.seed, recipe.recipe)
    if splits.format != "preference":
        raise DataError(
            f"data.train: {data.train} is `{splits.format}` data; recipe `{recipe.recipe}` needs preference pairs "
            "(prompt/chosen/rejected, e.g. from `llmops feedback export`)"
        )

    def tokenise() -> tuple[list, list | None, dict[str, Any], Any]:
        train, train_stats = build_pair_examples(
            splits.train, tokenizer, data.max_length, data.chat_template, margin_column, source=str(data.train)
        )
        validation = None
        stats: dict[str, Any] = {"train_pairs": train_stats.n_examples, "train_truncated": train_stats.n_truncated}
        if splits.validation:
            validation, val_stats = build_pair_examples(
                splits.validation, tokenizer, data.max_length, data.chat_template, margin_column,
                source=str(data.validation or f"{data.train} (held out)"),
            )
            stats["validation_pairs"] = val_stats.n_examples
        return train, validation, stats, train_stats

    key = cache_key(task="preference", fingerprints=splits.fingerprints, tokenizer=tokenizer_fingerprint(tokenizer),
                    max_length=data.max_length, chat_template=data.chat_template, margin_column=margin_column)
    train, validation, stats, train_stats = load_or_build(cache_dir, key, tokenise)
    if train_stats.n_truncated:
        log.warning("%d of %d pairs truncated to data.max_length=%d", train_stats.n_truncated,
                    train_stats.n_examples, data.max_length)
    return PreferenceSplits(train, validation, dict(splits.fingerprints), splits.feedback_snapshot_id, stats)

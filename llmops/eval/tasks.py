"""Turn a suite and its records into samples: rendered prompts, references, choices.

The suite's task type (`llmops.eval.task_types`) decides a sample's fields and turns
samples into typed requests; this module loads records and renders prompts for all of them.

Prompts are rendered here, once, so every local backend sees identical token ids; chat
suites also keep the messages, which an API backend sends for the server to render (no
local tokenizer is needed then). Few-shot examples are drawn with the suite seed (never
the sample itself) and written either as text before the prompt or, for chat suites, as
earlier user/assistant turns.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llmops.errors import DataError
from llmops.eval.backends.base import Prompt
from llmops.eval.suites import Suite

if TYPE_CHECKING:
    from llmops.eval.task_types.base import TaskType


@dataclass
class Sample:
    """One evaluated item and everything needed to score it."""

    index: int
    prompt: str = ""
    add_special_tokens: bool = True  # False when a chat template already wrote BOS etc.
    messages: tuple[tuple[str, str], ...] | None = None  # chat suites: what `prompt` was rendered from
    references: list[str] = field(default_factory=list)
    choices: list[str] = field(default_factory=list)
    gold: int = -1
    text: str = ""

    @property
    def question(self) -> str:
        """What a human (or a judge) reads as the question: the last user turn, else the prompt."""
        users = [c for r, c in self.messages or () if r == "user"]
        return users[-1] if users else self.prompt

    @property
    def request(self) -> Prompt:
        """The prompt as backends take it (text for local models, messages for API ones)."""
        return Prompt(self.prompt, self.add_special_tokens, self.messages)


def load_suite_records(suite: Suite, base_dir: Path, split: str | None = None, limit: int | None = None) -> list[dict]:
    """Records of the suite's dataset (paths relative to the suite file)."""
    from llmops.eval.choice_data import DOCSTRING_CHOICE, docstring_choice_records

    spec = suite.dataset.path
    if spec == DOCSTRING_CHOICE:
        records = docstring_choice_records(split or "test", seed=suite.seed)
        records = records[:limit] if limit else records
    else:
        from llmops.data import load_records

        if not spec.startswith(("builtin:", "hub:")) and not Path(spec).is_absolute():
            candidate = base_dir / spec
            spec = str(candidate) if candidate.exists() else spec
        records = load_records(spec, split=split, limit=limit)
    return map_fields(records, suite.dataset.fields)


def map_fields(records: list[dict], fields: dict[str, str]) -> list[dict]:
    """Records with the suite's names added from the dataset's columns (`dataset.fields`)."""
    if not fields:
        return records
    out = []
    for i, record in enumerate(records):
        missing = [column for column in fields.values() if column not in record]
        if missing:
            raise DataError(f"dataset.fields: record {i} has no column(s) {missing} (columns: {', '.join(sorted(record))})")
        out.append({**record, **{name: record[column] for name, column in fields.items()}})
    return out


def _field(record: dict, name: str, index: int) -> Any:
    if name not in record:
        raise DataError(f"record {index}: no field `{name}` (fields: {', '.join(sorted(record))})")
    return record[name]


def _render(template: str, record: dict, index: int, where: str) -> str:
    try:
        return template.format(**record)
    except KeyError as exc:
        raise DataError(f"{where}: record {index} has no field {exc} (fields: {', '.join(sorted(record))})") from None


class PromptBuilder:
    """Renders prompts for a suite, with the model's chat template when the suite uses messages."""

    def __init__(self, suite: Suite, tokenizer: Any, fewshot_pool: list[dict], task: TaskType | None = None):
        """`tokenizer` None: chat prompts stay messages (an API backend renders them). `task`: the
        suite's task type, which writes few-shot answers (default: the suite's)."""
        from llmops.eval.task_types import task_type

        self.suite, self.tokenizer, self.pool = suite, tokenizer, fewshot_pool
        self.task = task or task_type(suite)
        self.prompt = suite.prompt
        if (tokenizer is not None and self.prompt and self.prompt.messages is not None
                and not getattr(tokenizer, "chat_template", None)):
            raise DataError("suite uses chat `messages` but the model's tokenizer has no chat template; use `template`")

    def _shots(self, index: int, record: dict) -> list[dict]:
        k = self.prompt.fewshot if self.prompt else 0
        if not k:
            return []
        rng = random.Random(f"{self.suite.seed}:{index}")
        candidates = [r for r in self.pool if r is not record and r != record]
        if len(candidates) < k:
            raise DataError(f"fewshot={k} but only {len(candidates)} other records are available")
        return rng.sample(candidates, k)

    def target(self, record: dict, index: int) -> str:
        """The written answer of a few-shot example."""
        if self.prompt.target_template:
            return _render(self.prompt.target_template, record, index, "prompt.target_template")
        return self.task.fewshot_target(record, index)

    def render(self, record: dict, index: int) -> tuple[str, bool, tuple[tuple[str, str], ...] | None]:
        """(prompt text, whether the tokenizer should add its special tokens, chat messages or None)."""
        shots = self._shots(index, record)
        if self.prompt.template is not None:
            parts = [
                _render(self.prompt.template, s, index, "prompt.template") + self._answer_prefix() + self.target(s, index)
                for s in shots
            ]
            parts.append(_render(self.prompt.template, record, index, "prompt.template"))
            return self.prompt.fewshot_separator.join(parts), True, None
        messages: list[dict[str, str]] = []
        system = [m for m in self.prompt.messages if m.role == "system"]
        turns = [m for m in self.prompt.messages if m.role != "system"]
        for m in system:
            messages.append({"role": "system", "content": _render(m.content, record, index, "prompt.messages")})
        for s in shots:
            messages += [{"role": m.role, "content": _render(m.content, s, index, "prompt.messages")} for m in turns]
            messages.append({"role": "assistant", "content": self.target(s, index)})
        messages += [{"role": m.role, "content": _render(m.content, record, index, "prompt.messages")} for m in turns]
        as_tuples = tuple((m["role"], m["content"]) for m in messages)
        if self.tokenizer is None:
            return "", False, as_tuples
        text = self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return text, False, as_tuples

    def _answer_prefix(self) -> str:
        return self.task.fewshot_answer_prefix


def references_of(suite: Suite, record: dict, index: int) -> list[str]:
    value = _field(record, suite.references, index)
    refs = [value] if isinstance(value, str) else value
    if not isinstance(refs, list) or not refs or not all(isinstance(r, str) for r in refs):
        raise DataError(f"record {index}: `{suite.references}` must be a string or a non-empty list of strings")
    return refs


def choice_fields(suite: Suite, record: dict, index: int) -> tuple[list[str], int]:
    choices = _field(record, suite.choices, index)
    if not isinstance(choices, list) or len(choices) < 2 or not all(isinstance(c, str) for c in choices):
        raise DataError(f"record {index}: `{suite.choices}` must be a list of at least two strings")
    answer = _field(record, suite.answer, index)
    if isinstance(answer, bool) or not isinstance(answer, (int, str)):
        raise DataError(f"record {index}: `{suite.answer}` must be a choice index or the gold choice text")
    if isinstance(answer, str):
        if answer not in choices:
            raise DataError(f"record {index}: answer {answer!r} is not one of its choices")
        return choices, choices.index(answer)
    if not 0 <= answer < len(choices):
        raise DataError(f"record {index}: answer index {answer} outside 0..{len(choices) - 1}")
    return choices, answer


def build_samples(suite: Suite, records: list[dict], tokenizer: Any, fewshot_pool: list[dict] | None = None) -> list[Sample]:
    """One `Sample` per record, prompts rendered, fields validated (errors name the record);
    the suite's task type decides the fields."""
    from llmops.eval.task_types import task_type

    if not records:
        raise DataError(f"dataset `{suite.dataset.path}` has no records")
    return task_type(suite).build_samples(records, tokenizer, fewshot_pool if fewshot_pool is not None else records)

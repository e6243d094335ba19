"""Answer extraction before scoring, as in lm-evaluation-harness's filter pipelines.

A suite's ``filters`` turn each generated text into the answer the metrics compare, in
order: ``regex`` (a capture group of the first or last match), ``first_number`` and
``last_number``, ``strip``, ``lower``, ``take_first`` (the text up to the first of some
stop strings).
With ``generation.n`` samples per prompt, ``aggregate: majority_vote`` scores the most
frequent filtered answer (ties go to the answer seen first, so it is deterministic) and
``aggregate: first`` the first sample; ``pass_at_k`` sees every filtered sample.
Filters run on cached outputs, so changing them never regenerates.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

INVALID = "[invalid]"  # lm-eval's fallback for "no answer found"
_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")


class _Filter(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RegexFilter(_Filter):
    type: Literal["regex"]
    pattern: str = Field(description="Python regular expression searched in the output.")
    group: int = Field(0, ge=0, description="Capture group to keep (0: the whole match).")
    select: Literal["first", "last"] = Field("first", description="Which match when there are several.")
    fallback: str = Field(INVALID, description="The answer when nothing matches.")

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, v: str) -> str:
        try:
            re.compile(v)
        except re.error as exc:
            raise ValueError(f"invalid regular expression: {exc}") from None
        return v

    def __call__(self, text: str) -> str:
        compiled = re.compile(self.pattern)
        if self.group > compiled.groups:
            raise ValueError(f"filter regex {self.pattern!r} has no group {self.group}")
        matches = list(compiled.finditer(text))
        if not matches:
            return self.fallback
        return (matches[0] if self.select == "first" else matches[-1]).group(self.group) or self.fallback


class NumberFilter(_Filter):
    """`first_number` / `last_number`: a number in the text, thousands separators dropped."""

    type: Literal["first_number", "last_number"]
    fallback: str = Field(INVALID, description="The answer when the output has no number.")

    def __call__(self, text: str) -> str:
        found = _NUMBER.findall(text)
        if not found:
            return self.fallback
        number = (found[0] if self.type == "first_number" else found[-1]).replace(",", "")
        return number[:-2] if number.endswith(".0") else number


class StripFilter(_Filter):
    type: Literal["strip"]

    def __call__(self, text: str) -> str:
        return text.strip()


class LowerFilter(_Filter):
    type: Literal["lower"]

    def __call__(self, text: str) -> str:
        return text.lower()


class TakeFirstFilter(_Filter):
    type: Literal["take_first"]
    until: list[str] = Field(default_factory=lambda: ["\n"], min_length=1,
                             description="Keep the text before the first of these strings.")

    def __call__(self, text: str) -> str:
        cut = min((i for i in (text.find(s) for s in self.until) if i >= 0), default=len(text))
        return text[:cut]


FilterSpec = Annotated[
    RegexFilter | NumberFilter | StripFilter | LowerFilter | TakeFirstFilter, Field(discriminator="type")
]
Aggregate = Literal["first", "majority_vote"]


def apply_filters(filters: list, text: str) -> str:
    for f in filters:
        text = f(text)
    return text


def majority_vote(answers: list[str]) -> str:
    """The most frequent answer; among equally frequent ones, the one that came first."""
    counts = Counter(answers)
    best = max(counts.values())
    return next(a for a in answers if counts[a] == best)


def aggregate(answers: list[str], how: Aggregate) -> str:
    return majority_vote(answers) if how == "majority_vote" else answers[0]

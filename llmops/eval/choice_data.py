"""``builtin:docstring-choice``: a multiple-choice task generated from stdlib docstrings.

"Which function does this docstring describe?" — the gold answer is the documented
object's name, the three distractors are names of other objects in the same split of
``builtin:docstrings``. Everything is derived from the seed, so the task is the same on
every run of the same Python version (the docstrings come from the running stdlib).
"""

from __future__ import annotations

import random

DOCSTRING_CHOICE = "builtin:docstring-choice"
N_CHOICES = 4


def short_name(source: str) -> str:
    return source.rsplit(".", 1)[-1]


def docstring_choice_records(split: str = "test", seed: int = 0) -> list[dict]:
    """Records {question, choices, answer, source} for the given split."""
    from llmops.data import load_records

    base = load_records("builtin:docstrings", split=split)
    names = sorted({short_name(r["source"]) for r in base})
    if len(names) < N_CHOICES:
        return []
    rng = random.Random(seed)
    records = []
    for r in base:
        gold = short_name(r["source"])
        distractors = rng.sample([n for n in names if n != gold], N_CHOICES - 1)
        choices = [gold, *distractors]
        rng.shuffle(choices)
        records.append({
            "question": r["completion"],
            "choices": choices,
            "answer": choices.index(gold),
            "source": r["source"],
        })
    return records

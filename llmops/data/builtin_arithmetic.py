"""``builtin:arithmetic``: small word problems with integer answers, generated offline.

A deterministic generator (seeded per split, so splits never share a problem and every
run sees the same items) writes one- and two-step problems over addition, subtraction
and multiplication. Records are ``{"question", "answer", "solution"}`` with the answer as
a string of digits, the shape of GSM8K's final answer: an evaluation suite extracts the
number from free text with filters and scores it by exact match, majority vote or pass@k.
"""

from __future__ import annotations

import random

_SPLIT_SEEDS = {"train": 11, "validation": 23, "test": 37}
_SIZES = {"train": 500, "validation": 100, "test": 200}
_NAMES = ["Ana", "Ben", "Chen", "Dara", "Eli", "Fatima", "Goran", "Hana", "Ivo", "Jun", "Kofi", "Lena"]
_THINGS = ["apples", "marbles", "books", "stamps", "pencils", "shells", "cards", "coins"]


def _problem(rng: random.Random) -> dict[str, str]:
    name, thing = rng.choice(_NAMES), rng.choice(_THINGS)
    a, b = rng.randint(2, 40), rng.randint(2, 30)
    kind = rng.choice(["add", "sub", "mul", "add_sub", "mul_add"])
    if kind == "add":
        q = f"{name} has {a} {thing} and gets {b} more. How many {thing} does {name} have now?"
        answer, solution = a + b, f"{a} + {b} = {a + b}"
    elif kind == "sub":
        a = a + b  # never negative
        q = f"{name} has {a} {thing} and gives {b} away. How many {thing} are left?"
        answer, solution = a - b, f"{a} - {b} = {a - b}"
    elif kind == "mul":
        a, b = rng.randint(2, 12), rng.randint(2, 12)
        q = f"{name} buys {a} boxes with {b} {thing} in each box. How many {thing} is that?"
        answer, solution = a * b, f"{a} * {b} = {a * b}"
    elif kind == "add_sub":
        c = rng.randint(1, a + b)
        q = f"{name} has {a} {thing}, finds {b} more and then loses {c}. How many {thing} does {name} have?"
        answer, solution = a + b - c, f"{a} + {b} - {c} = {a + b - c}"
    else:
        a, b, c = rng.randint(2, 9), rng.randint(2, 9), rng.randint(1, 20)
        q = f"{name} fills {a} bags with {b} {thing} each and has {c} loose {thing}. How many {thing} in total?"
        answer, solution = a * b + c, f"{a} * {b} + {c} = {a * b + c}"
    return {"question": q, "answer": str(answer), "solution": f"{solution}. The answer is {answer}."}


def arithmetic(split: str) -> list[dict[str, str]]:
    """The problems of `split` (train 500, validation 100, test 200), disjoint across splits."""
    rng = random.Random(_SPLIT_SEEDS[split])
    seen_elsewhere: set[str] = set()
    for other, seed in _SPLIT_SEEDS.items():
        if other != split:
            other_rng = random.Random(seed)
            seen_elsewhere |= {_problem(other_rng)["question"] for _ in range(_SIZES[other])}
    rows: list[dict[str, str]] = []
    seen: set[str] = set()
    while len(rows) < _SIZES[split]:
        row = _problem(rng)
        if row["question"] not in seen and row["question"] not in seen_elsewhere:
            seen.add(row["question"])
            rows.append(row)
    return rows

"""Varied test corpora for metric parity: unicode, non-Latin scripts, empty hypotheses,
several references, multi-line segments."""

from __future__ import annotations

import random

HYPS = [
    "the cat sat on the mat",
    "",
    "Ein Hund läuft schnell über die Straße.",
    "東京は日本の首都です。",
    "Привет, как дела? Всё хорошо.",
    "emoji 🚀 rockets are fast 🚀",
    "Return the number of items in the list.",
    "a a a a a a",
    "   leading and trailing spaces   ",
    "Compute the sum.\nReturn it as an integer.",
    "مرحبا بالعالم",
    "the the the",
]
REFS_1 = [
    "the cat is on the mat",
    "there is nothing here",
    "Ein Hund rennt schnell über die Straße.",
    "東京は日本の首都である。",
    "Привет, как у тебя дела?",
    "rockets 🚀 are fast",
    "Return the number of items.",
    "a",
    "leading and trailing spaces",
    "Compute the total sum.\nReturn it as int.",
    "مرحبا بالعالم الجميل",
    "",
]
REFS_2 = [
    "a cat sat on a mat",
    "nothing",
    "Der Hund läuft schnell.",
    "日本の首都は東京です。",
    "Как дела?",
    "rockets go fast",
    "Get the count of list items.",
    "a a",
    "spaces",
    "Sum everything.\nReturn an integer.",
    "أهلا بالعالم",
    "the",
]


def random_corpus(n: int, seed: int = 0, n_refs: int = 1) -> tuple[list[str], list[list[str]]]:
    """Random word-salad pairs sharing a vocabulary (so n-gram overlap is non-trivial)."""
    rng = random.Random(seed)
    vocab = "the a cat dog sat ran on in mat house fast slow big small über 東京 дела 🚀 return value list".split()

    def sent() -> str:
        return " ".join(rng.choice(vocab) for _ in range(rng.randint(0, 14)))

    hyps = [sent() for _ in range(n)]
    refs = [[sent() or "x" for _ in range(n_refs)] for _ in range(n)]
    return hyps, refs

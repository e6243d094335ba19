"""`rouge_core.RougeCore` (rouge-score's counting without importing nltk) must give exactly
rouge-score's `RougeScorer` Score tuples — precision, recall and F, compared with ``==`` —
on every docstring of builtin:docstrings and on adversarial strings, with and without
stemming, for `score` and `score_multi`."""

from __future__ import annotations

import random

import pytest
from rouge_score.rouge_scorer import RougeScorer

from eval_corpora import HYPS, REFS_1, REFS_2, random_corpus
from llmops.data.loaders import load_records
from llmops.eval.metrics.rouge_core import RougeCore

TYPES = ["rouge1", "rouge2", "rouge3", "rougeL", "rougeLsum"]

ADVERSARIAL = [
    "", " ", "\n", "\n\n\n", "\t \r\n", "...", "!!! ??? ;;;", "a", "A", "ab abc abcd abcde",
    "the THE The tHe", "a a a a a a a a", "a b a b a b a b", "b a b a", "x y z\nx y z\nz y x",
    "running runs ran runner", "caresses ponies ties caress cats", "generously generous generate generation",
    "flies dies mules denied died agreed owned humbled sized meeting stating siezing itemization",
    "sensational traditional reference colonizer plotted", "ying yang yes", "sky skies skied", "dying lying tying",
    "1 22 333 4444 55555", "3.14159 2,718 1e-9 0x1F", "don't can't won't it's", "e-mail co-operate re-enter",
    "naïve café résumé façade", "Straße über Öl", "東京は日本の首都です。", "Привет мир", "مرحبا", "🚀🚀 🚀",
    "mixed 東京 words and дела tokens", "line one\n\nline two\n \nline three", "  leading\ttabs\tand  spaces  ",
    "\nstarts with newline", "ends with newline\n", "repeated\nrepeated\nrepeated",
    "word " * 60, "alpha beta gamma delta " * 12, "CamelCaseWords snake_case_words kebab-case-words",
    "def f(x):\n    return x + 1\n", "<b>html</b> &amp; entities", "URL https://example.com/a?b=c#d",
    "ing ed ly ies sses ational", "abc\x00def", "zero\u200bwidth", "ﬁ ligature ﬂow", "İstanbul",
]


def _docstring_texts() -> list[str]:
    texts: list[str] = []
    for split in ("train", "validation", "test"):
        for record in load_records("builtin:docstrings", split=split):
            texts += [record["prompt"], record["completion"]]
    return texts


def _pairs(stride: int = 1) -> list[tuple[str, str]]:
    """(target, prediction): each docstring against its own summary, each summary against the
    next docstring (long, multi-line texts: many LCS ties), the adversarial strings against each other, and
    word salad (heavy n-gram and LCS ambiguity)."""
    docs = _docstring_texts()
    # docstring→summary, summary→next docstring; stride 2 keeps only the first (each text once)
    pairs = [(docs[i], docs[i + 1]) for i in range(0, len(docs) - 1, stride)]
    pairs += [(a, b) for a in ADVERSARIAL for b in ADVERSARIAL[::3]]
    pairs += list(zip(REFS_1, HYPS)) + list(zip(REFS_2, HYPS))
    hyps, refs = random_corpus(200, seed=11)
    pairs += [(r[0], h) for h, r in zip(hyps, refs)]
    rng = random.Random(5)
    words = [w for d in docs[:200] for w in d.split()]

    def salad() -> str:  # multi-line, from docstring words: Lsum's union LCS and its double-count guard
        return "\n".join(" ".join(rng.choices(words, k=rng.randint(0, 9))) for _ in range(rng.randint(1, 4)))

    pairs += [(salad(), salad()) for _ in range(200)]
    return pairs


@pytest.fixture(scope="module")
def pairs() -> list[tuple[str, str]]:
    return _pairs()


@pytest.mark.parametrize("stemmer", [False, True])
def test_score_equals_rouge_score_exactly(pairs: list[tuple[str, str]], stemmer: bool) -> None:
    if stemmer:  # nltk's stemmer is slow in the reference: every docstring once, not twice
        pairs = _pairs(stride=2)
    assert len(pairs) > 1200
    reference = RougeScorer(TYPES, use_stemmer=stemmer)
    ours = RougeCore(TYPES, use_stemmer=stemmer)
    mismatches = [(t, p) for t, p in pairs if ours.score(t, p) != reference.score(t, p)]
    assert not mismatches, f"{len(mismatches)} of {len(pairs)} pairs differ, first: {mismatches[0]!r}"
    # not vacuous: the corpus has partial overlaps, and stemming changes some scores
    nonzero = sum(0 < reference.score(t, p)["rougeLsum"].fmeasure < 1 for t, p in pairs[:300])
    assert nonzero > 100


def test_stemming_is_exercised(pairs: list[tuple[str, str]]) -> None:
    plain, stemmed = RougeCore(["rouge1"]), RougeCore(["rouge1"], use_stemmer=True)
    changed = sum(plain.score(t, p) != stemmed.score(t, p) for t, p in pairs[:400])
    assert changed > 20


@pytest.mark.parametrize("stemmer", [False, True])
def test_score_multi_equals_rouge_score_exactly(pairs: list[tuple[str, str]], stemmer: bool) -> None:
    reference = RougeScorer(TYPES, use_stemmer=stemmer)
    ours = RougeCore(TYPES, use_stemmer=stemmer)
    rng = random.Random(0)
    targets = [t for t, _ in pairs]
    for _, prediction in pairs[::20]:
        refs = rng.sample(targets, rng.randint(1, 4))  # ties in F pick the first reference, as np.argmax
        assert ours.score_multi(refs, prediction) == reference.score_multi(refs, prediction)


def test_invalid_types_are_refused_like_rouge_score() -> None:
    for bad in ("rouge0", "rougeX", "bleu", "rouge12"):
        with pytest.raises(ValueError):
            RougeCore([bad])

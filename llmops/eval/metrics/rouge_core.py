"""rouge-score's ROUGE-N/L/Lsum, without importing nltk unless stemming is asked for.

Why: ``rouge_score.rouge_scorer`` runs ``import nltk`` at module level (for
``sent_tokenize``, which we never call) and ``rouge_score.tokenizers`` runs ``from nltk.stem
import porter``. Python always executes a package's ``__init__`` before any submodule, and
nltk's imports most of nltk plus ``scipy.stats`` and, where installed, scikit-learn, pandas
and pyarrow: 1.4–1.7 CPU seconds, a fifth of the imports of ``llmops eval run`` with
lm-eval's dependencies installed. There is no clean way to load ``nltk.stem.porter`` alone
(it imports ``nltk.redos``, ``nltk.termsec`` and ``nltk.stem.api``, so the parent package
runs first).

So this module restates rouge-score 0.1.2's counting — n-gram overlap, LCS, and the
summary-level union LCS with its double-count guard, with the same backtracking tie-break
— on the library's own tokenizer (``rouge_score.tokenize.tokenize``: lower-case, non
``[a-z0-9]`` to spaces, words longer than 3 characters stemmed) and its ``Score`` and
``fmeasure``. The Porter stemmer is still nltk's (``PorterStemmer()``, the mode rouge-score
uses), imported only when ``use_stemmer`` is on. ``tests/eval/test_rouge_core_parity.py``
checks every Score tuple equals ``RougeScorer``'s exactly on every docstring of
builtin:docstrings and adversarial strings, with and without stemming.
"""

from __future__ import annotations

import collections
from functools import lru_cache
from typing import Callable, Sequence

from rouge_score.scoring import Score, fmeasure
from rouge_score.tokenize import tokenize as rouge_tokenize

Tokens = Sequence[str]


@lru_cache(maxsize=1)
def porter_stem() -> Callable[[str], str]:
    """nltk's Porter stemmer (NLTK_EXTENSIONS mode, as rouge-score builds it), memoised:
    stemming is a pure function of the word and the slow part of stemmed ROUGE."""
    from nltk.stem.porter import PorterStemmer

    return lru_cache(maxsize=1 << 16)(PorterStemmer().stem)


class _Stemmer:
    """The object `rouge_score.tokenize.tokenize` expects (anything with ``stem``)."""

    def __init__(self) -> None:
        self.stem = porter_stem()


class RougeCore:
    """Same results as ``rouge_score.rouge_scorer.RougeScorer(rouge_types, use_stemmer)``."""

    def __init__(self, rouge_types: Sequence[str], use_stemmer: bool = False) -> None:
        for t in rouge_types:
            if t not in ("rougeL", "rougeLsum") and not (len(t) == 6 and t.startswith("rouge") and t[5] in "123456789"):
                raise ValueError(f"invalid rouge type: {t!r}")
        self.rouge_types = list(rouge_types)
        self._stemmer = _Stemmer() if use_stemmer else None

    def tokenize(self, text: str) -> list[str]:
        return rouge_tokenize(text, self._stemmer)

    def score(self, target: str, prediction: str) -> dict[str, Score]:
        """Scores of one prediction against one target, per ROUGE type."""
        target_tokens = self.tokenize(target)
        prediction_tokens = self.tokenize(prediction)
        result: dict[str, Score] = {}
        for rouge_type in self.rouge_types:
            if rouge_type == "rougeL":
                result[rouge_type] = score_lcs(target_tokens, prediction_tokens)
            elif rouge_type == "rougeLsum":  # sentences are the text's non-empty lines
                result[rouge_type] = summary_level_lcs(
                    [self.tokenize(s) for s in target.split("\n") if s],
                    [self.tokenize(s) for s in prediction.split("\n") if s],
                )
            else:
                n = int(rouge_type[5:])
                result[rouge_type] = score_ngrams(ngrams(target_tokens, n), ngrams(prediction_tokens, n))
        return result

    def score_multi(self, targets: Sequence[str], prediction: str) -> dict[str, Score]:
        """Per type, the Score of the target with the highest F (the first one on ties)."""
        scores = [self.score(t, prediction) for t in targets]
        return {k: max(scores, key=lambda s: s[k].fmeasure)[k] for k in self.rouge_types}


def ngrams(tokens: Tokens, n: int) -> collections.Counter:
    return collections.Counter(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))


def score_ngrams(target: collections.Counter, prediction: collections.Counter) -> Score:
    overlap = sum(min(count, prediction[gram]) for gram, count in target.items())
    precision = overlap / max(sum(prediction.values()), 1)
    recall = overlap / max(sum(target.values()), 1)
    return Score(precision=precision, recall=recall, fmeasure=fmeasure(precision, recall))


def lcs_length(ref: Tokens, can: Tokens) -> int:
    """Length of a longest common subsequence (one DP row at a time)."""
    previous = [0] * (len(can) + 1)
    for r in ref:
        current = [0]
        for j, c in enumerate(can):
            current.append(previous[j] + 1 if r == c else max(previous[j + 1], current[j]))
        previous = current
    return previous[-1]


def score_lcs(target: Tokens, prediction: Tokens) -> Score:
    if not target or not prediction:
        return Score(precision=0, recall=0, fmeasure=0)
    length = lcs_length(target, prediction)
    precision = length / len(prediction)
    recall = length / len(target)
    return Score(precision=precision, recall=recall, fmeasure=fmeasure(precision, recall))


def lcs_indices(ref: Tokens, can: Tokens) -> list[int]:
    """Indices into `ref` of one LCS, read back exactly as rouge-score does (which LCS is
    chosen matters for the summary-level union)."""
    table = [[0] * (len(can) + 1) for _ in range(len(ref) + 1)]
    for i in range(1, len(ref) + 1):
        row, above = table[i], table[i - 1]
        for j in range(1, len(can) + 1):
            row[j] = above[j - 1] + 1 if ref[i - 1] == can[j - 1] else max(above[j], row[j - 1])
    i, j, out = len(ref), len(can), []
    while i > 0 and j > 0:
        if ref[i - 1] == can[j - 1]:
            out.append(i - 1)
            i, j = i - 1, j - 1
        elif table[i][j - 1] > table[i - 1][j]:
            j -= 1
        else:
            i -= 1
    out.reverse()
    return out


def summary_level_lcs(ref_sents: list[list[str]], can_sents: list[list[str]]) -> Score:
    """ROUGE-Lsum (Lin 2004, §3.2): union LCS of each reference sentence against every
    candidate sentence, each token counted at most as often as it occurs on both sides."""
    if not ref_sents or not can_sents:
        return Score(precision=0, recall=0, fmeasure=0)
    m = sum(map(len, ref_sents))
    n = sum(map(len, can_sents))
    if not n or not m:
        return Score(precision=0, recall=0, fmeasure=0)
    ref_counts = collections.Counter(t for s in ref_sents for t in s)
    can_counts = collections.Counter(t for s in can_sents for t in s)
    hits = 0
    for ref in ref_sents:
        union = sorted(set().union(*(lcs_indices(ref, can) for can in can_sents)))
        for token in (ref[i] for i in union):
            if can_counts[token] > 0 and ref_counts[token] > 0:
                hits += 1
                can_counts[token] -= 1
                ref_counts[token] -= 1
    recall = hits / m
    precision = hits / n
    return Score(precision=precision, recall=recall, fmeasure=fmeasure(precision, recall))

"""Evaluation-set contamination: word n-gram overlap between evaluation items and training data.

An evaluation item is contaminated when at least `threshold` of its word n-grams occur
in the training data (items shorter than n words count as one n-gram: the whole item).
This follows the n-gram decontamination used for GPT-3 and lm-evaluation-harness (13-grams
there); the default n is 8 because instruction data and docstrings are short.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from llmops.data.textstats import record_text, words


def ngrams(text: str, n: int) -> set[tuple[str, ...]]:
    w = words(text)
    if not w:
        return set()
    if len(w) < n:
        return {tuple(w)}
    return {tuple(w[i : i + n]) for i in range(len(w) - n + 1)}


@dataclass
class ContaminationReport:
    n: int
    threshold: float
    n_items: int
    n_train: int
    items: list[dict[str, Any]] = field(default_factory=list)  # contaminated ones: index, overlap, text

    @property
    def contaminated_indices(self) -> list[int]:
        return [it["index"] for it in self.items]

    def summary(self) -> dict[str, Any]:
        return {
            "ngram": self.n, "threshold": self.threshold, "eval_items": self.n_items, "train_records": self.n_train,
            "contaminated": len(self.items), "rate": round(len(self.items) / max(self.n_items, 1), 4),
            "contaminated_indices": self.contaminated_indices,
        }


def train_ngrams(train_records: list[dict[str, Any]], n: int) -> set[tuple[str, ...]]:
    """Every word n-gram of the training data (plus whole short records)."""
    out: set[tuple[str, ...]] = set()
    for r in train_records:
        out |= ngrams(record_text(r), n)
    return out


def check_contamination(
    train_records: list[dict[str, Any]], eval_items: list[dict[str, Any]], n: int = 8, threshold: float = 0.5,
    fields: list[str] | None = None,
) -> ContaminationReport:
    """Which evaluation items overlap the training data; `fields` limits the item text compared."""
    if n <= 0 or not 0 < threshold <= 1:
        raise ValueError(f"need n > 0 and 0 < threshold <= 1, got n={n}, threshold={threshold}")
    seen = train_ngrams(train_records, n)
    report = ContaminationReport(n, threshold, len(eval_items), len(train_records))
    for i, item in enumerate(eval_items):
        text = record_text({k: item[k] for k in fields if k in item} if fields else item)
        grams = ngrams(text, n)
        if not grams:
            continue
        overlap = len(grams & seen) / len(grams)
        if overlap >= threshold:
            report.items.append({"index": i, "overlap": round(overlap, 4), "text": text[:300]})
    return report

"""Exact and near-duplicate detection (MinHash + LSH via datasketch) and deduplication.

Exact duplicates compare normalised text (`textstats.normalise`); near duplicates are
pairs whose word-shingle Jaccard similarity, estimated by MinHash, reaches `threshold`.
Groups are connected components, so A~B and B~C put A, B and C in one group; dedup
keeps the first record of every group (file order), which makes it deterministic.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from llmops.data.textstats import record_text, text_hash, words


@dataclass
class DuplicateReport:
    n_records: int
    exact_groups: list[list[int]] = field(default_factory=list)  # record indices, first kept
    near_groups: list[list[int]] = field(default_factory=list)
    threshold: float = 0.8
    shingle: int = 5
    num_perm: int = 128

    @property
    def drop(self) -> set[int]:
        return {i for g in self.exact_groups + self.near_groups for i in g[1:]}

    def summary(self) -> dict[str, Any]:
        exact = sum(len(g) - 1 for g in self.exact_groups)
        near = sum(len(g) - 1 for g in self.near_groups)
        return {
            "n_records": self.n_records, "exact_duplicates": exact, "near_duplicates": near,
            "exact_rate": round(exact / max(self.n_records, 1), 4), "near_rate": round(near / max(self.n_records, 1), 4),
            "kept": self.n_records - len(self.drop), "minhash": {"threshold": self.threshold, "shingle_words": self.shingle,
                                                                  "num_perm": self.num_perm},
        }


def _shingles(text: str, k: int) -> set[bytes]:
    w = words(text)
    if len(w) <= k:
        return {" ".join(w).encode("utf-8")}
    return {" ".join(w[i : i + k]).encode("utf-8") for i in range(len(w) - k + 1)}


def _components(n: int, pairs: list[tuple[int, int]]) -> list[list[int]]:
    parent = list(range(n))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in pairs:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    groups: dict[int, list[int]] = {}
    for i in range(n):
        groups.setdefault(find(i), []).append(i)
    return [g for g in groups.values() if len(g) > 1]


def find_duplicates(
    records: list[dict[str, Any]], threshold: float = 0.8, shingle: int = 5, num_perm: int = 128, seed: int = 1
) -> DuplicateReport:
    """Exact groups, then near-duplicate groups among the records that are not exact copies."""
    from datasketch import MinHash, MinHashLSH

    if not 0 < threshold <= 1:
        raise ValueError(f"threshold must be in (0, 1], got {threshold}")
    texts = [record_text(r) for r in records]
    first: dict[str, int] = {}
    exact_pairs = []
    for i, t in enumerate(texts):
        h = text_hash(t)
        if h in first:
            exact_pairs.append((first[h], i))
        else:
            first[h] = i
    report = DuplicateReport(len(records), _components(len(records), exact_pairs), threshold=threshold,
                             shingle=shingle, num_perm=num_perm)
    reps = sorted(first.values())  # one representative per exact group
    lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
    sigs = {}
    for i in reps:
        m = MinHash(num_perm=num_perm, seed=seed)
        m.update_batch(list(_shingles(texts[i], shingle)))
        sigs[i] = m
        lsh.insert(str(i), m)
    near_pairs = []
    for i in reps:
        for key in lsh.query(sigs[i]):
            j = int(key)
            if j > i and sigs[i].jaccard(sigs[j]) >= threshold:
                near_pairs.append((i, j))
    report.near_groups = _components(len(records), near_pairs)
    return report


def dedup(records: list[dict[str, Any]], **kwargs: Any) -> tuple[list[dict[str, Any]], DuplicateReport]:
    """(records without exact and near duplicates, the report); the first of each group is kept."""
    report = find_duplicates(records, **kwargs)
    drop = report.drop
    return [r for i, r in enumerate(records) if i not in drop], report

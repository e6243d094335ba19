"""Preference pairs (chosen, rejected) with one margin scale and a per-pair agreement.

**Margin, one scale for every pair: the strength of the preference as a fraction of the
strongest possible, in (0, 1].**

- From comparisons: net votes / judgements of the pair (ties count as judgements). All
  raters preferring the chosen side gives 1; 2 of 3 gives 1/3.
- From ratings: difference of the mean scores / width of the item's scale. 5 vs 1 on a
  1–5 scale gives 1; 4.5 vs 3 gives 0.375.

**Agreement** of a pair, in [0, 1]: the share of its judgements that agree with the
exported direction — for comparisons, votes for the chosen side / judgements of the
pair; for ratings, among raters who rated both responses, the share whose own scores
order them the same way (a rater's tie does not agree). ``None`` when no rater rated
both responses.

Rules (kept from the first exporter): comparisons count directly and win over ratings
on a pair they decide; ratings aggregate by mean per response and a strategy picks pairs
among an item's rated responses (``best_vs_worst``, ``all_pairs``,
``best_vs_random_lower``); ties and margins below ``min_margin`` are dropped; equal means
order by response id; the random choice is seeded per (seed, item); rows are ordered by
item id; identical texts and repeated (prompt, chosen, rejected) are dropped.

**Corrections as pairs** ("edits as preferences"): a rater who rewrites a response says
the rewrite is better than what the model wrote. Strategy ``corrections`` exports only
those pairs — chosen = the correction's text, rejected = the corrected response — and
``all_pairs_and_corrections`` adds them to ``all_pairs``. Their margin is 1 − the corrected
response's mean rating on [0, 1] (a rewrite of a response rated at the scale's top says
nothing and is dropped), or 1 when the response was not rated; agreement is ``None`` (one
rater wrote it), ``n_raters`` 1, ``source`` ``corrections``. A correction of no particular
response, or with an empty text, is not a pair.
"""

from __future__ import annotations

import itertools
import random
from collections import defaultdict
from dataclasses import dataclass

from llmops.feedback.errors import Invalid
from llmops.feedback.exports.source import Feedback

STRATEGIES = ("best_vs_worst", "all_pairs", "best_vs_random_lower", "corrections", "all_pairs_and_corrections")
CORRECTION_STRATEGIES = ("corrections", "all_pairs_and_corrections")


@dataclass(frozen=True)
class Pair:
    item_id: int
    chosen: int
    rejected: int
    margin: float
    agreement: float | None
    n_raters: int
    source: str  # "comparisons" | "ratings" | "corrections"
    chosen_text: str | None = None  # a correction's text (then `chosen` is the correction id, not a response)


def check_params(strategy: str, min_margin: float) -> None:
    if strategy not in STRATEGIES:
        raise Invalid(f"unknown strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}", field="strategy")
    if not 0.0 <= min_margin <= 1.0:
        raise Invalid("min_margin must be in [0, 1] (the margin is a fraction of the strongest preference)",
                      field="min_margin")


def _comparison_votes(entries: list[tuple[int, int, int, int]]) -> dict[frozenset, dict]:
    """(comparison id, rater, response, rank) → per unordered pair: wins per side, ties, raters."""
    by_cmp: dict[int, list[tuple[int, int, int]]] = defaultdict(list)
    for cid, rater, rid, rank in entries:
        by_cmp[cid].append((rater, rid, rank))
    pairs: dict[frozenset, dict] = {}
    for members in by_cmp.values():
        for (rater, a, ra), (_, b, rb) in itertools.combinations(sorted(members, key=lambda m: m[1]), 2):
            p = pairs.setdefault(frozenset((a, b)), {"wins": defaultdict(int), "ties": 0, "raters": set()})
            p["raters"].add(rater)
            if ra == rb:
                p["ties"] += 1
            else:
                p["wins"][a if ra < rb else b] += 1
    return pairs


def _rating_candidates(order: list[int], means: dict[int, float], strategy: str,
                       rng: random.Random) -> list[tuple[int, int]]:
    if len(order) < 2:
        return []
    if strategy == "best_vs_worst":
        return [(order[0], order[-1])]
    if strategy in ("all_pairs", "all_pairs_and_corrections"):
        return list(itertools.combinations(order, 2))
    if strategy == "corrections":
        return []
    best = order[0]
    lower = [r for r in order[1:] if means[r] < means[best]]
    return [(best, rng.choice(sorted(lower)))] if lower else []


def _rating_agreement(by_rater: dict[int, dict[int, float]], chosen: int, rejected: int) -> float | None:
    both = [(s[chosen], s[rejected]) for s in by_rater.values() if chosen in s and rejected in s]
    return sum(c > r for c, r in both) / len(both) if both else None


def preference_pairs(fb: Feedback, strategy: str = "best_vs_worst", min_margin: float = 0.0,
                     seed: int = 0) -> list[Pair]:
    """Every exported pair, ordered by item: comparisons, then ratings, then corrections
    (`fb` must be loaded with its corrections for the correction strategies)."""
    check_params(strategy, min_margin)
    units: dict[int, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))  # item → response → [0,1]
    by_rater: dict[int, dict[int, dict[int, float]]] = defaultdict(lambda: defaultdict(dict))  # item → rater → resp
    raters_of: dict[int, set[int]] = defaultdict(set)
    for r in fb.ratings:
        units[r.item_id][r.response_id].append(r.unit)
        by_rater[r.item_id][r.rater_id][r.response_id] = r.unit
        raters_of[r.response_id].add(r.rater_id)

    corrections_of: dict[int, list] = defaultdict(list)
    if strategy in CORRECTION_STRATEGIES:
        for c in sorted(fb.corrections, key=lambda c: c.correction_id):
            corrections_of[c.item_id].append(c)
    out: list[Pair] = []
    for item_id in sorted(set(units) | set(fb.comparisons) | set(corrections_of)):
        decided: set[frozenset] = set()
        compared = {} if strategy == "corrections" else _comparison_votes(fb.comparisons.get(item_id, []))
        for key, p in sorted(compared.items(), key=lambda kv: sorted(kv[0])):
            decided.add(key)
            a, b = sorted(key)
            wa, wb = p["wins"][a], p["wins"][b]
            if wa == wb:
                continue  # a tie or a split vote: no preference
            chosen, rejected = (a, b) if wa > wb else (b, a)
            judgements = wa + wb + p["ties"]
            margin = abs(wa - wb) / judgements
            if margin < min_margin:
                continue
            out.append(Pair(item_id, chosen, rejected, margin, max(wa, wb) / judgements, len(p["raters"]),
                            "comparisons"))
        means = {rid: sum(v) / len(v) for rid, v in units.get(item_id, {}).items()}
        order = sorted(means, key=lambda r: (-means[r], r))
        rng = random.Random(f"{seed}:{item_id}")
        for chosen, rejected in _rating_candidates(order, means, strategy, rng):
            margin = means[chosen] - means[rejected]
            if frozenset((chosen, rejected)) in decided or margin <= 0 or margin < min_margin:
                continue
            out.append(Pair(item_id, chosen, rejected, margin, _rating_agreement(by_rater[item_id], chosen, rejected),
                            len(raters_of[chosen] | raters_of[rejected]), "ratings"))
        if strategy in CORRECTION_STRATEGIES:
            out += _correction_pairs(corrections_of.get(item_id, []), means, min_margin)
    return out


def _correction_pairs(corrections: list, means: dict[int, float], min_margin: float) -> list[Pair]:
    out = []
    for c in corrections:
        if c.response_id is None or not c.text.strip():
            continue
        margin = 1.0 - means[c.response_id] if c.response_id in means else 1.0
        if margin <= 0 or margin < min_margin:
            continue
        out.append(Pair(c.item_id, c.correction_id, c.response_id, margin, None, 1, "corrections", c.text))
    return out

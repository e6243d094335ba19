"""Feedback → preference pairs ``{prompt, chosen, rejected, margin, item_id, n_raters}`` (TRL format).

Rules (docs/feedback.md has the long form):

- **Comparisons count directly.** Every comparison (ranking, pair or tie) gives one
  vote per pair of its responses. A pair is exported when one side has strictly more
  votes; ``margin`` = net votes / judgements of that pair (ties count as judgements),
  in (0, 1]. Pairs with equal votes are ties and are dropped.
- **Ratings aggregate by mean per response** (over raters), then the strategy picks
  pairs among an item's rated responses: ``best_vs_worst`` (one pair), ``all_pairs``,
  or ``best_vs_random_lower`` (the best vs. one seeded-random strictly lower response).
  ``margin`` = difference of means, on the item's scale; pairs whose margin is 0 (ties)
  or below ``min_margin`` are dropped. A pair that comparisons already decided is not
  exported again from ratings (direct judgements win).
- **Deterministic:** responses with equal means are ordered by response id (lower id
  ranks higher), the random choice is seeded per (seed, item), rows are ordered by
  item id. The same feedback and parameters give the same file and the same
  ``snapshot_id``.
- **Pinned snapshot:** the export reads in one transaction-wide snapshot
  (``REPEATABLE READ READ ONLY`` on PostgreSQL, a WAL read transaction on SQLite): a
  high-water id alone does not pin rows on PostgreSQL, where a lower id can commit after
  a higher one was seen. `record_snapshot` stores the rows themselves, as the exact JSON
  text served (``feedback_export_rows``), so a snapshot id re-read later gives the same
  bytes however many ratings arrived since.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import random
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from llmops.feedback.agreement import krippendorff_alpha
from llmops.feedback.errors import Invalid
from llmops.feedback.tables import Comparison, ComparisonEntry, ExportRow, ExportSnapshot, Item, Rating, Response

STRATEGIES = ("best_vs_worst", "all_pairs", "best_vs_random_lower")


@dataclass
class ExportResult:
    snapshot_id: str
    n_rows: int
    agreement: dict[str, Any]
    rows: list[dict[str, Any]] = field(repr=False, default_factory=list)
    strategy: str = "best_vs_worst"
    params: dict[str, Any] = field(default_factory=dict)
    max_rating_id: int | None = None
    max_comparison_id: int | None = None
    path: Path | None = None
    meta_path: Path | None = None


def _prompt_text(item: Item) -> str:
    return f"{item.context}\n\n{item.prompt}" if item.context else item.prompt


def _comparison_pairs(entries: list[tuple[int, int, int, int]]) -> dict[frozenset, dict]:
    """entries (comparison_id, rater_id, response_id, rank) → per unordered pair: wins, ties, raters."""
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


def _rating_pairs(order: list[int], means: dict[int, float], strategy: str, rng: random.Random) -> list[tuple[int, int]]:
    """Candidate (chosen, rejected) pairs from responses ordered best first."""
    if len(order) < 2:
        return []
    if strategy == "best_vs_worst":
        return [(order[0], order[-1])]
    if strategy == "all_pairs":
        return [(a, b) for a, b in itertools.combinations(order, 2)]
    best = order[0]
    lower = [r for r in order[1:] if means[r] < means[best]]
    return [(best, rng.choice(sorted(lower)))] if lower else []


def build_export(session: Session, strategy: str = "best_vs_worst", min_margin: float = 0.0, seed: int = 0) -> ExportResult:
    """Compute preference rows and agreement from the store (reads only; see `record_snapshot`)."""
    if strategy not in STRATEGIES:
        raise Invalid(f"unknown strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}", field="strategy")
    if min_margin < 0:
        raise Invalid("min_margin must be >= 0", field="min_margin")
    max_rating = session.scalar(select(func.max(Rating.id)))
    max_cmp = session.scalar(select(func.max(Comparison.id)))

    ratings = session.execute(
        select(Rating.item_id, Rating.response_id, Rating.rater_id, Rating.score, Rating.scale_min, Rating.scale_max)
        .where(Rating.id <= (max_rating or 0))
        .order_by(Rating.id)
    ).all()
    entries = session.execute(
        select(ComparisonEntry.item_id, Comparison.id, Comparison.rater_id, ComparisonEntry.response_id, ComparisonEntry.rank)
        .join(Comparison, Comparison.id == ComparisonEntry.comparison_id)
        .where(Comparison.id <= (max_cmp or 0))
        .order_by(Comparison.id)
    ).all()

    scores: dict[int, dict[int, list[int]]] = defaultdict(lambda: defaultdict(list))  # item → response → scores
    raters_of: dict[int, set[int]] = defaultdict(set)
    units: dict[int, list[float]] = defaultdict(list)  # response → scores normalised to [0, 1]
    for item_id, rid, rater, score, lo, hi in ratings:
        scores[item_id][rid].append(score)
        raters_of[rid].add(rater)
        units[rid].append((score - lo) / (hi - lo))
    cmp_entries: dict[int, list] = defaultdict(list)
    for item_id, cid, rater, rid, rank in entries:
        cmp_entries[item_id].append((cid, rater, rid, rank))

    item_ids = sorted(set(scores) | set(cmp_entries))
    items = {i.id: i for i in session.scalars(select(Item).where(Item.id.in_(item_ids)))} if item_ids else {}
    texts = (
        dict(session.execute(select(Response.id, Response.text).where(Response.item_id.in_(item_ids))).all())
        if item_ids
        else {}
    )

    rows: list[dict[str, Any]] = []
    for item_id in item_ids:
        item_rows: list[dict[str, Any]] = []
        decided: set[frozenset] = set()
        for pair, p in sorted(_comparison_pairs(cmp_entries[item_id]).items(), key=lambda kv: sorted(kv[0])):
            decided.add(pair)
            a, b = sorted(pair)
            wa, wb = p["wins"][a], p["wins"][b]
            if wa == wb:
                continue  # a tie (or a split vote): no preference
            chosen, rejected = (a, b) if wa > wb else (b, a)
            margin = abs(wa - wb) / (wa + wb + p["ties"])
            item_rows.append(_row(items[item_id], texts, chosen, rejected, margin, len(p["raters"]), "comparisons"))
        means = {rid: sum(v) / len(v) for rid, v in scores[item_id].items()}
        order = sorted(means, key=lambda r: (-means[r], r))
        rng = random.Random(f"{seed}:{item_id}")
        for chosen, rejected in _rating_pairs(order, means, strategy, rng):
            margin = means[chosen] - means[rejected]
            if frozenset((chosen, rejected)) in decided or margin <= 0 or margin < min_margin:
                continue
            n_raters = len(raters_of[chosen] | raters_of[rejected])
            item_rows.append(_row(items[item_id], texts, chosen, rejected, margin, n_raters, "ratings"))
        rows.extend(item_rows)
    rows, n_dropped = _dedupe(rows)

    agreement = {
        "krippendorff_alpha_interval": krippendorff_alpha(units, "interval"),
        "krippendorff_alpha_ordinal": krippendorff_alpha(units, "ordinal"),
        "n_ratings": len(ratings),
        "n_units_multiply_rated": sum(1 for v in units.values() if len(v) >= 2),
        "n_pairs_dropped_as_duplicates": n_dropped,
    }
    params = {"strategy": strategy, "min_margin": min_margin, "seed": seed}
    digest = hashlib.sha256(json.dumps([params, rows], sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    return ExportResult(
        snapshot_id=f"fbs_{digest[:20]}",
        n_rows=len(rows),
        agreement=agreement,
        rows=rows,
        strategy=strategy,
        params=params,
        max_rating_id=max_rating,
        max_comparison_id=max_cmp,
    )


def _dedupe(rows: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], int]:
    """Drop uninformative rows: identical chosen/rejected text, or a (prompt, chosen, rejected)
    already exported (sampled choices often repeat a text, and a prompt can be sent twice)."""
    seen: set[tuple[str, str, str]] = set()
    kept = []
    for row in rows:
        key = (row["prompt"], row["chosen"], row["rejected"])
        if row["chosen"] == row["rejected"] or key in seen:
            continue
        seen.add(key)
        kept.append(row)
    return kept, len(rows) - len(kept)


def _row(item: Item, texts: dict[int, str], chosen: int, rejected: int, margin: float, n_raters: int, source: str) -> dict:
    return {
        "prompt": _prompt_text(item),
        "chosen": texts[chosen],
        "rejected": texts[rejected],
        "margin": round(margin, 6),
        "item_id": item.id,
        "n_raters": n_raters,
        "chosen_response_id": chosen,
        "rejected_response_id": rejected,
        "source": source,
    }


def row_json(row: dict[str, Any]) -> str:
    """The one serialisation of a row (stored, served and written to files alike)."""
    return json.dumps(row, ensure_ascii=False)


def record_snapshot(session: Session, result: ExportResult) -> None:
    """Remember the export and its rows, so its snapshot id (lineage) can be looked up and re-read."""
    if session.get(ExportSnapshot, result.snapshot_id) is None:
        session.add(
            ExportSnapshot(
                snapshot_id=result.snapshot_id,
                strategy=result.strategy,
                params=result.params,
                n_rows=result.n_rows,
                max_rating_id=result.max_rating_id,
                max_comparison_id=result.max_comparison_id,
                agreement=result.agreement,
            )
        )
        session.flush()
    if result.rows and session.scalar(select(func.count()).where(ExportRow.snapshot_id == result.snapshot_id)) == 0:
        session.execute(
            ExportRow.__table__.insert(),
            [{"snapshot_id": result.snapshot_id, "seq": i, "row_json": row_json(r)} for i, r in enumerate(result.rows)],
        )


def read_snapshot_rows(session: Session, snapshot_id: str, after: int, limit: int) -> tuple[list[str], int | None]:
    """(row JSON texts with seq > `after`, the last seq if more follow) of a stored snapshot."""
    rows = session.execute(
        select(ExportRow.seq, ExportRow.row_json)
        .where(ExportRow.snapshot_id == snapshot_id, ExportRow.seq > after)
        .order_by(ExportRow.seq)
        .limit(limit + 1)
    ).all()
    more = len(rows) > limit
    rows = rows[:limit]
    return [r.row_json for r in rows], (rows[-1].seq if more else None)


def build_pinned(db_url: str | None, strategy: str, min_margin: float, seed: int) -> ExportResult:
    """`build_export` inside one pinned read snapshot (see the module docstring)."""
    from llmops.db.engine import read_only_session

    with read_only_session(db_url, snapshot=True) as session, session.begin():
        return build_export(session, strategy, min_margin, seed)


def export_preferences(
    db_url: str | None,
    out_path: str | os.PathLike,
    strategy: str = "best_vs_worst",
    min_margin: float = 0.0,
    seed: int = 0,
) -> ExportResult:
    """Write preference pairs to `out_path` (JSONL, atomically) and ``<out>.meta.json``."""
    from llmops.db import session_factory
    from llmops.db.migrate import check_schema

    check_schema(db_url)
    # Read in a pinned snapshot that never holds the write lock (a live server keeps
    # writing), then record the snapshot in a short write transaction.
    result = build_pinned(db_url, strategy, min_margin, seed)
    with session_factory(db_url)() as session, session.begin():
        record_snapshot(session, result)
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        for row in result.rows:
            fh.write(row_json(row) + "\n")
    os.replace(tmp, out)
    meta = out.with_name(out.name + ".meta.json")
    meta.write_text(
        json.dumps(
            {
                "snapshot_id": result.snapshot_id,
                "n_rows": result.n_rows,
                "params": result.params,
                "agreement": result.agreement,
                "max_rating_id": result.max_rating_id,
                "max_comparison_id": result.max_comparison_id,
                "format": "trl-preference",
            },
            indent=2,
        )
        + "\n"
    )
    result.path, result.meta_path = out, meta
    return result

"""Feedback → SFT data: each item's best-rated response (rejection-sampling fine-tuning).

Llama 2's RLHF alternates PPO with *rejection sampling*: sample several answers per
prompt, keep the best one by the reward, fine-tune on it. Here the judge is the
raters: for every item with at least ``min_responses`` rated responses, the response
with the highest mean rating wins (ties broken by the lower response id, as in the
preference export), and it is kept only when its mean reaches ``min_rating`` and beats
the item's mean by ``min_gain`` (a prompt where every answer is equally good teaches
nothing). Rows are ``{prompt, completion, item_id, response_id, mean_rating, n_raters}``
ordered by item id; the same feedback gives the same file and snapshot id.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from llmops.feedback.errors import Invalid
from llmops.feedback.tables import Item, Rating, Response


@dataclass
class BestResponses:
    snapshot_id: str
    rows: list[dict[str, Any]] = field(repr=False)
    params: dict[str, Any]
    n_items_rated: int
    path: Path | None = None


def build_best_responses(session: Session, min_rating: float = 0.0, min_gain: float = 0.0,
                         min_responses: int = 2) -> BestResponses:
    """Pick each rated item's best response (reads only)."""
    if min_responses < 1:
        raise Invalid("min_responses must be >= 1", field="min_responses")
    if min_gain < 0:
        raise Invalid("min_gain must be >= 0", field="min_gain")
    max_rating = session.scalar(select(func.max(Rating.id))) or 0
    scores: dict[int, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    raters: dict[int, set[int]] = defaultdict(set)
    for item_id, rid, rater, score in session.execute(
        select(Rating.item_id, Rating.response_id, Rating.rater_id, Rating.score)
        .where(Rating.id <= max_rating).order_by(Rating.id)
    ):
        scores[item_id][rid].append(score)
        raters[rid].add(rater)
    item_ids = sorted(scores)
    items = {i.id: i for i in session.scalars(select(Item).where(Item.id.in_(item_ids)))} if item_ids else {}
    texts = (dict(session.execute(select(Response.id, Response.text).where(Response.item_id.in_(item_ids))).all())
             if item_ids else {})
    rows = []
    for item_id in item_ids:
        means = {rid: sum(v) / len(v) for rid, v in scores[item_id].items()}
        if len(means) < min_responses:
            continue
        best = min(means, key=lambda r: (-means[r], r))
        average = sum(means.values()) / len(means)
        if means[best] < min_rating or means[best] - average < min_gain or not texts[best].strip():
            continue
        item = items[item_id]
        rows.append({"prompt": f"{item.context}\n\n{item.prompt}" if item.context else item.prompt,
                     "completion": texts[best], "item_id": item_id, "response_id": best,
                     "mean_rating": round(means[best], 6), "n_raters": len(raters[best])})
    params = {"min_rating": min_rating, "min_gain": min_gain, "min_responses": min_responses,
              "max_rating_id": max_rating}
    digest = hashlib.sha256(json.dumps([params, rows], sort_keys=True).encode()).hexdigest()
    return BestResponses(f"fbb_{digest[:20]}", rows, params, len(item_ids))


def export_best_responses(db_url: str | None, out_path: str | os.PathLike, min_rating: float = 0.0,
                          min_gain: float = 0.0, min_responses: int = 2) -> BestResponses:
    """Write the best-rated responses to `out_path` (JSONL, atomically) and ``<out>.meta.json``."""
    from llmops.db import upgrade
    from llmops.db.engine import read_only_session

    upgrade(db_url)
    with read_only_session(db_url) as session, session.begin():
        result = build_best_responses(session, min_rating, min_gain, min_responses)
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in result.rows), encoding="utf-8")
    os.replace(tmp, out)
    meta = {"snapshot_id": result.snapshot_id, "n_rows": len(result.rows), "n_items_rated": result.n_items_rated,
            "params": result.params, "format": "prompt-completion (best-rated responses)"}
    out.with_name(out.name + ".meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    result.path = out
    return result

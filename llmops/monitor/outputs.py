"""Output-side monitoring: what each model version *answers*, from the feedback store.

Prompt drift says the questions changed; this says the answers did: per model version,
the response length (words), the share of empty responses, the share of refusals (a
fixed, documented list of refusal openings — a heuristic, reported as such) and the
rating distribution. Data comes from `llmops.feedback.queries.responses_by_version`.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import numpy as np

# Openings of a refusal, matched case-insensitively at the start of the response (after whitespace).
REFUSAL_PATTERNS = (
    r"i('m| am) (sorry|unable|not able)", r"i can(no|')t (help|assist|do|provide|answer)", r"as an ai\b",
    r"i (will|won't|would) not\b", r"sorry,? (but )?i\b", r"unfortunately,? i (can(no|')t|am unable)",
)
_REFUSAL = re.compile(r"^\s*(" + "|".join(REFUSAL_PATTERNS) + ")", re.IGNORECASE)


def is_refusal(text: str) -> bool:
    return bool(_REFUSAL.match(text))


def summarize_outputs(texts: list[str], ratings: dict[int, int], scale: tuple[int, int] | None) -> dict[str, Any]:
    words = np.array([len(t.split()) for t in texts], dtype=float)
    n = len(texts)
    n_ratings = sum(ratings.values())
    return {
        "n_responses": n,
        "mean_words": float(words.mean()) if n else 0.0,
        "p50_words": float(np.median(words)) if n else 0.0,
        "p95_words": float(np.quantile(words, 0.95)) if n else 0.0,
        "empty_rate": float(np.mean([not t.strip() for t in texts])) if n else 0.0,
        "refusal_rate": float(np.mean([is_refusal(t) for t in texts])) if n else 0.0,
        "n_ratings": n_ratings,
        "rating_distribution": {str(k): v / n_ratings for k, v in sorted(ratings.items())} if n_ratings else {},
        "mean_rating": (sum(k * v for k, v in ratings.items()) / n_ratings) if n_ratings else None,
        "rating_scale": list(scale) if scale else None,
    }


def output_report(db_url: str | None, since: datetime | None = None, until: datetime | None = None) -> list[dict[str, Any]]:
    """One row per model version, newest data only (the window), sorted by version."""
    from llmops.db.schema import ensure_all
    from llmops.feedback.queries import responses_by_version
    from llmops.settings import database_url

    url = database_url(db_url)
    ensure_all(url)  # a fresh database has no feedback tables yet: that is "no responses", not an error
    rows = []
    for version, data in responses_by_version(url, since, until).items():
        rows.append({"model_version": version, **summarize_outputs(data["texts"], data["ratings"], data["scale"])})
    return sorted(rows, key=lambda r: (r["model_version"] is None, str(r["model_version"])))

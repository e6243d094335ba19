"""What the feedback page shows: rater progress, agreement, rating distributions, critiques.

Built on `llmops.feedback.dashboard` (keyset pages, time-windowed aggregates) so the page stays
fast with millions of ratings; the rater page itself is the feedback service's (`/rate`).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from llmops.feedback import dashboard
from llmops.ui import svg

WINDOWS = {"1d": timedelta(days=1), "7d": timedelta(days=7), "30d": timedelta(days=30)}
PAGE = 50


def feedback_context(db: str | None, window_key: str | None = None, raters_after: int | None = None,
                     critiques_before: int | None = None, corrections_before: int | None = None) -> dict[str, Any]:
    key = window_key if window_key in WINDOWS else "7d"
    window = WINDOWS[key]
    dist = dashboard.rating_distribution(db, window)
    raters, raters_cursor = dashboard.rater_progress(db, PAGE, raters_after, window)
    critiques, crit_cursor = dashboard.recent_critiques(db, 20, critiques_before)
    corrections, corr_cursor = dashboard.recent_corrections(db, 20, corrections_before)
    groups = {str(d["model_version"]) + ("" if d["scale"] == [1, 5] else f" ({d['scale'][0]}-{d['scale'][1]})"):
              {k: float(v) for k, v in d["counts"].items()} for d in dist}
    return {"window": key, "windows": list(WINDOWS), "distribution": dist,
            "distribution_chart": svg.bar_chart(f"ratings per score, last {key}", groups),
            "raters": raters, "raters_cursor": raters_cursor, "critiques": critiques,
            "critiques_cursor": crit_cursor, "corrections": corrections, "corrections_cursor": corr_cursor,
            "projects": dashboard.projects_overview(db), "agreement": dashboard.recent_agreement(db)}


def project_context(db: str | None, name: str) -> dict[str, Any]:
    """A project's settings, progress per rater and quality (agreement, each rater against the rest, gold)."""
    return dashboard.project_detail(db, name)

"""Production quality from the feedback store: mean rating, win rate and volume per model
reference and time window (via `llmops.feedback.queries.quality_by_model`)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any


def _quality_by_model(db_url: str | None, since: datetime | None, until: datetime | None) -> list[dict[str, Any]]:
    from llmops.feedback.queries import quality_by_model
    from llmops.db.schema import ensure_all
    from llmops.settings import database_url

    url = database_url(db_url)
    ensure_all(url)  # a fresh database has no feedback tables yet: that is "no feedback", not an error
    return quality_by_model(url, since=since, until=until)


def mean_rating(db_url: str | None, model: str, since: datetime, until: datetime,
                normalized: bool = True) -> tuple[float | None, int]:
    """(mean rating, number of ratings) of one model reference in [since, until)."""
    for row in _quality_by_model(db_url, since, until):
        if row.get("model") == model:
            mean = row.get("mean_rating_normalized") if normalized else row.get("mean_rating")
            if normalized and mean is None:
                mean = row.get("mean_rating")
            return (float(mean) if mean is not None else None), int(row.get("n_ratings") or 0)
    return None, 0


def quality_windows(db_url: str | None, window: timedelta, n_windows: int = 7,
                    now: datetime | None = None) -> list[dict[str, Any]]:
    """One row per (window, model), newest window last: the time series behind `monitor quality`
    and the UI's quality charts (every window in one pass over the feedback store)."""
    from llmops.db.schema import ensure_all
    from llmops.feedback.queries import quality_by_window
    from llmops.settings import database_url

    now = now or datetime.now(timezone.utc)
    url = database_url(db_url)
    ensure_all(url)  # a fresh database has no feedback tables yet: that is "no feedback", not an error
    edges = [now - i * window for i in range(n_windows, -1, -1)]
    rows = []
    for (start, end), window_rows in zip(zip(edges, edges[1:]), quality_by_window(url, edges)):
        for q in window_rows:
            rows.append({"window_start": start.isoformat(), "window_end": end.isoformat(), "model": q.get("model"),
                         "n_ratings": q.get("n_ratings", 0), "mean_rating": q.get("mean_rating"),
                         "mean_rating_normalized": q.get("mean_rating_normalized"), "win_rate": q.get("win_rate"),
                         "n_comparisons": q.get("n_comparisons", 0)})
    return rows

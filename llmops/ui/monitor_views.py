"""What the monitoring pages show: quality and drift over time, alerts, incidents, retraining jobs.

Everything comes from `llmops.monitor` public functions, the ones `llmops monitor quality|alerts`
and `llmops jobs` print: `quality.quality_windows`, `history.drift_windows`, `incidents.alert_states`,
`history.incidents_page`, `history.alert_events_page` and `jobs.JobStore`.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta
from typing import Any

from llmops.monitor import history
from llmops.monitor.incidents import alert_states
from llmops.monitor.jobs import JobStore, job_cursor, log_text
from llmops.monitor.quality import quality_windows
from llmops.ui import svg

WINDOWS = {"1h": timedelta(hours=1), "6h": timedelta(hours=6), "1d": timedelta(days=1), "1w": timedelta(weeks=1)}
PAGE = 50


def window_of(text: str | None) -> tuple[str, timedelta]:
    """A window choice from the page's menu (unknown values fall back to one day)."""
    key = text if text in WINDOWS else "1d"
    return key, WINDOWS[key]


def _label(iso: str, window: timedelta) -> str:
    return iso[5:16].replace("T", " ") if window < timedelta(days=1) else iso[5:10]


def quality_charts(db: str | None, window: timedelta, n_windows: int = 7) -> dict[str, Any]:
    """Mean rating (normalised) and win rate per model over the last `n_windows` windows."""
    rows = quality_windows(db, window, n_windows)
    starts = sorted({r["window_start"] for r in rows})
    index = {s: i for i, s in enumerate(starts)}
    rating: dict[str, list] = defaultdict(list)
    wins: dict[str, list] = defaultdict(list)
    volume: dict[str, list] = defaultdict(list)
    for r in rows:
        model = "(no model reference)" if r["model"] is None else str(r["model"])
        rating[model].append((index[r["window_start"]], r["mean_rating_normalized"]))
        wins[model].append((index[r["window_start"]], r["win_rate"]))
        volume[model].append((index[r["window_start"]], float(r["n_ratings"])))
    labels = [_label(s, window) for s in starts]
    return {"rows": rows,
            "rating_chart": svg.line_chart(dict(rating), title="mean rating (0-1) per model", xlabel="",
                                           x_labels=labels, y_range=(0.0, 1.0)),
            "win_chart": svg.line_chart(dict(wins), title="pairwise win rate per model", xlabel="", x_labels=labels,
                                        y_range=(0.0, 1.0)),
            "volume_chart": svg.line_chart(dict(volume), title="ratings per window", xlabel="", x_labels=labels)}


def overview_context(db: str | None, window_key: str | None = None, incidents_before: int | None = None,
                     jobs_before: str | None = None) -> dict[str, Any]:
    key, window = window_of(window_key)
    jobs = JobStore(db)
    job_rows = jobs.list(limit=PAGE, before=jobs_before)
    incidents, inc_cursor = history.incidents_page(db, PAGE, incidents_before)
    return {"window": key, "windows": list(WINDOWS), **quality_charts(db, window), "alerts": alert_states(db),
            "references": history.list_references(db), "incidents": incidents, "incidents_cursor": inc_cursor,
            "jobs": job_rows, "jobs_cursor": job_cursor(job_rows[-1]) if len(job_rows) == PAGE else None}


def drift_context(db: str | None, name: str, version: int, window_key: str | None = None,
                  n_windows: int = 7) -> dict[str, Any]:
    """Drift of the served prompts against NAME/VERSION's reference, per window."""
    key, window = window_of(window_key)
    rows = history.drift_windows(db, name, version, window, n_windows)
    labels = [_label(r["window_start"], window) for r in rows]
    features = sorted({f for r in rows for f in r["statistics"]})
    stats = {f: [(i, r["statistics"].get(f)) for i, r in enumerate(rows)] for f in features}
    psi = {"max PSI": [(i, r["max_psi"]) for i, r in enumerate(rows)]}
    return {"model_name": name, "version": version, "window": key, "windows": list(WINDOWS), "rows": rows,
            "stat_chart": svg.line_chart(stats, title="test statistic per feature", xlabel="", x_labels=labels),
            "psi_chart": svg.line_chart(psi, title="largest PSI", xlabel="", x_labels=labels)}


def job_context(db: str | None, job_id: str) -> dict[str, Any]:
    """One job: command, attempts, outcome, and the end of its log."""
    store = JobStore(db)
    store.poll()  # as `llmops jobs show`: a job that ended since anyone looked shows its real state
    job = store.get(job_id)
    return {"job": job, "log": log_text(job)}


def alert_events(db: str | None, rule: str | None = None, before: int | None = None) -> dict[str, Any]:
    events, cursor = history.alert_events_page(db, PAGE, before, rule=rule)
    return {"events": events, "events_cursor": cursor, "rule": rule}

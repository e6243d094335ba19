"""Seed a PostgreSQL database at UI scale: ratings, registry versions, monitoring history (and runs).

Used by `benchmarks/ui_scale.py`. Rows go in with COPY (psycopg) in the shape the stores write
them, after the stores' own migrations created the schema; sequences are moved past the seeded
ids so the stores keep working on the seeded database. Timestamps spread over `days` days so
time-windowed views see a realistic share of the history.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np

NOW = datetime.now(timezone.utc)


def admin_dsn(url: str) -> str:
    """A psycopg DSN from a SQLAlchemy URL."""
    return url.replace("postgresql+psycopg://", "postgresql://")


def fresh_database(server_url: str, name: str) -> str:
    """Drop and create database `name` on the server of `server_url`; returns its SQLAlchemy URL."""
    import psycopg

    if not name.replace("_", "").isalnum():
        raise ValueError(f"database name {name!r}: letters, digits and _ only")
    with psycopg.connect(admin_dsn(server_url), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return server_url.rsplit("/", 1)[0] + f"/{name}"


def copy_rows(conn: Any, table: str, columns: list[str], rows: Iterable[tuple]) -> int:
    n = 0
    with conn.cursor() as cur, cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as cp:
        for row in rows:
            cp.write_row(row)
            n += 1
    return n


def bump_sequence(conn: Any, table: str, column: str = "id") -> None:
    conn.execute(f"SELECT setval(pg_get_serial_sequence('{table}', '{column}'), "
                 f"(SELECT COALESCE(MAX({column}), 1) FROM {table}))")


def _at(i: int, n: int, days: float) -> datetime:
    """The i-th of n timestamps spread evenly over the last `days` days (oldest first)."""
    return NOW - timedelta(days=days) * (1 - (i + 0.5) / n)


def seed_feedback(url: str, n_ratings: int, n_raters: int = 200, per_response: int = 5, n_versions: int = 10,
                  days: float = 180.0, seed: int = 0) -> dict[str, int]:
    """Items with two responses each (served by `bench` versions), each response rated by `per_response`
    raters; one pairwise comparison per item; 2% of ratings carry a critique."""
    import psycopg

    from llmops.monitor.synthetic import prompts

    rng = np.random.default_rng(seed)
    n_items = max(1, n_ratings // (2 * per_response))
    texts = prompts(rng, n_items, 24, 8)
    scores = rng.integers(1, 6, size=(n_items, 2, per_response))
    with psycopg.connect(admin_dsn(url)) as conn:
        copy_rows(conn, "feedback_raters", ["id", "name", "created_at"],
                  ((r + 1, f"rater-{r:04d}", NOW - timedelta(days=days)) for r in range(n_raters)))
        copy_rows(conn, "feedback_items", ["id", "prompt", "metadata", "scale_min", "scale_max", "created_at"],
                  ((i + 1, texts[i], json.dumps({"source": "llmops.serve"}), 1, 5, _at(i, n_items, days))
                   for i in range(n_items)))

        def version(i: int, side: int) -> str:
            return f"bench/{1 + (i * 2 + side) % n_versions}"

        copy_rows(conn, "feedback_responses", ["id", "item_id", "position", "text", "model_ref", "model_version",
                                               "created_at"],
                  ((2 * i + side + 1, i + 1, side, f"answer {side} to item {i}", "registry:bench@production",
                    version(i, side), _at(i, n_items, days)) for i in range(n_items) for side in (0, 1)))

        def ratings() -> Iterable[tuple]:
            rid = 0
            for i in range(n_items):
                at = _at(i, n_items, days)
                first = (i * 7) % n_raters
                for side in (0, 1):
                    for k in range(per_response):
                        rid += 1
                        critique = f"critique {rid}: misses the point" if rid % 50 == 0 else None
                        yield (rid, 2 * i + side + 1, i + 1, 1, 5, 1 + (first + k) % n_raters,
                               int(scores[i, side, k]), critique, at)

        n = copy_rows(conn, "feedback_ratings", ["id", "response_id", "item_id", "scale_min", "scale_max", "rater_id",
                                                 "score", "critique", "created_at"], ratings())
        copy_rows(conn, "feedback_comparisons", ["id", "item_id", "rater_id", "kind", "response_set", "created_at"],
                  ((i + 1, i + 1, 1 + (i * 7) % n_raters, "pair", f"{2 * i + 1},{2 * i + 2}", _at(i, n_items, days))
                   for i in range(n_items)))
        copy_rows(conn, "feedback_comparison_entries", ["comparison_id", "response_id", "item_id", "rank"],
                  ((i + 1, 2 * i + side + 1, i + 1, 1 + (side ^ int(scores[i, 0].sum() < scores[i, 1].sum())))
                   for i in range(n_items) for side in (0, 1)))
        for table in ("feedback_raters", "feedback_items", "feedback_responses", "feedback_ratings",
                      "feedback_comparisons"):
            bump_sequence(conn, table)
        conn.commit()
    return {"raters": n_raters, "items": n_items, "responses": 2 * n_items, "ratings": n, "comparisons": n_items}


def seed_registry(url: str, artifact_dir: Path, n_versions: int = 1000, seed_evals: Callable | None = None
                  ) -> dict[str, int]:
    """Model `bench` with `n_versions` versions in a fine-tuning chain (one stored artifact, registered
    through the API, shared by the bulk rows), aliases moved along it, promotions and audit entries."""
    import psycopg

    from llmops.registry import api

    mv = api.register_version("bench", artifact_dir, lineage={"base_model_ref": "builtin:tiny", "run_id": "run-0"},
                              db_url=url)
    if seed_evals:
        seed_evals(mv)
    with psycopg.connect(admin_dsn(url)) as conn:
        model_id, = conn.execute("SELECT id FROM registry_models WHERE name = 'bench'").fetchone()
        copy_rows(conn, "registry_versions", ["model_id", "version", "artifact_uri", "artifact_sha256",
                                              "artifact_bytes", "lineage", "tags", "description", "created_by",
                                              "created_at"],
                  ((model_id, v, mv.artifact_uri, mv.sha256, mv.n_bytes,
                    json.dumps({"parent_version": v - 1, "run_id": f"run-{v - 1}",
                                "dataset_fingerprints": {"train": f"fp{v % 17:04d}"}}),
                    json.dumps({"team": "bench"}), "", "bench-seeder", _at(v, n_versions + 1, 180))
                   for v in range(2, n_versions + 1)))
        conn.execute("UPDATE registry_models SET next_version = %s WHERE id = %s", (n_versions + 1, model_id))
        conn.execute("INSERT INTO registry_aliases (model_id, alias, version, updated_at) VALUES "
                     "(%s, 'production', %s, now()), (%s, 'staging', %s, now())",
                     (model_id, n_versions - 1, model_id, n_versions))
        events = [("production" if v % 2 else "staging", v - 2 if v > 2 else None, v) for v in range(2, n_versions + 1)]
        copy_rows(conn, "registry_alias_events", ["model_name", "alias", "from_version", "to_version", "actor",
                                                  "reason", "forced", "at"],
                  (("bench", a, f, t, "bench-seeder", "seeded", False, _at(t, n_versions + 1, 180))
                   for a, f, t in events))
        report = {"name": "bench", "alias": "production", "passed": True, "baseline_version": None,
                  "results": [{"rule": "min-acc", "type": "metric_threshold", "passed": True,
                               "detail": "acc 0.61 >= 0.5", "tests": []}]}
        copy_rows(conn, "registry_promotions", ["model_name", "version", "alias", "decision", "actor", "reason",
                                                "report", "at"],
                  (("bench", v, "production", "accepted" if v % 5 else "refused", "bench-seeder", "seeded",
                    json.dumps(report | {"version": v, "passed": bool(v % 5)}), _at(v, n_versions + 1, 180))
                   for v in range(2, n_versions + 1)))
        copy_rows(conn, "registry_audit", ["action", "model_name", "version", "actor", "reason", "detail", "at"],
                  (("tags", "bench", v, "bench-seeder", "seeded", json.dumps({"changes": {"team": [None, "bench"]}}),
                    _at(v, n_versions + 1, 180)) for v in range(2, n_versions + 1)))
        conn.commit()
    return {"models": 1, "versions": n_versions, "alias_events": len(events), "promotions": n_versions - 1}


def seed_monitor(url: str, n_incidents: int = 2000, n_jobs: int = 500, days: float = 180.0) -> dict[str, int]:
    """Alert state machines, incidents with retraining outcomes, events and finished jobs."""
    import psycopg

    from llmops.db.schema import ensure_schema
    from llmops.monitor.tables import MONITOR_HEAD

    ensure_schema(url, MONITOR_HEAD)
    rules = ["rating_drop", "drift", "error_rate", "output_refusals"]
    with psycopg.connect(admin_dsn(url)) as conn:
        copy_rows(conn, "monitor_alerts", ["id", "scope", "model", "rule", "state", "breaches", "last_value",
                                           "state_since", "fire_count", "errors", "updated_at"],
                  ((i + 1, "bench", "registry:bench@production", r, "firing" if i == 0 else "ok", 0, 0.1 * i,
                    NOW, n_incidents // len(rules), 0, NOW) for i, r in enumerate(rules)))
        outcomes = ["done", "failed", "abandoned", "done"]
        copy_rows(conn, "monitor_incidents", ["id", "alert_id", "scope", "model", "rule", "opened_at", "resolved_at",
                                              "value", "detail", "retrain", "retrain_attempts", "job_id", "why"],
                  ((i + 1, 1 + i % len(rules), "bench", "registry:bench@production", rules[i % len(rules)],
                    _at(i, n_incidents, days), _at(i, n_incidents, days) + timedelta(hours=2), 0.3, "seeded",
                    outcomes[i % 4], 1, f"job{i % n_jobs:012d}", "seeded") for i in range(n_incidents)))
        copy_rows(conn, "monitor_alert_events", ["event_id", "scope", "model", "rule", "incident_id", "event",
                                                 "value", "detail", "at"],
                  ((uuid.uuid4().hex, "bench", "registry:bench@production", rules[i // 2 % len(rules)], i // 2 + 1,
                    "fired" if i % 2 == 0 else "resolved", 0.3, "seeded", _at(i, 2 * n_incidents, days))
                   for i in range(2 * n_incidents)))
        copy_rows(conn, "monitor_jobs", ["id", "kind", "model", "incident_id", "launcher", "argv", "status", "attempt",
                                         "max_attempts", "backoff_s", "exit_code", "log_tail", "created_at",
                                         "started_at", "finished_at"],
                  ((f"job{i:012d}", "train", "registry:bench@production", i + 1, "local",
                    json.dumps(["llmops", "train", "recipes/sft_lora.yaml", "--resume"]),
                    "succeeded" if i % 3 else "failed", 1, 3, 60.0, 0 if i % 3 else 1,
                    f"step 10 loss 1.2\n[attempt 1: exit code {0 if i % 3 else 1}]", _at(i, n_jobs, days),
                    _at(i, n_jobs, days), _at(i, n_jobs, days) + timedelta(minutes=20)) for i in range(n_jobs)))
        for table in ("monitor_alerts", "monitor_incidents", "monitor_alert_events"):
            bump_sequence(conn, table)
        conn.commit()
    return {"alerts": len(rules), "incidents": n_incidents, "alert_events": 2 * n_incidents, "jobs": n_jobs}


def analyze(url: str) -> None:
    import psycopg

    with psycopg.connect(admin_dsn(url), autocommit=True) as conn:
        conn.execute("ANALYZE")


def timed(fn: Callable[[], dict[str, int]]) -> tuple[dict[str, int], float]:
    t0 = time.perf_counter()
    counts = fn()
    return counts, time.perf_counter() - t0

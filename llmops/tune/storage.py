"""Where a study lives: Optuna's RDB storage beside the project's tables, without touching them.

Optuna runs its own alembic migrations and keeps them in a table named ``alembic_version``
— the name llmops' migrations use. In one schema the two would overwrite each other's
revision, so:

- PostgreSQL: the same database, Optuna's tables in their own schema ``llmops_tune``
  (created on first use; connections set ``search_path``);
- SQLite (one file has no schemas): the file ``<db>-tune.db`` beside the project database.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

SCHEMA = "llmops_tune"


def tune_storage_url(db_url: str) -> tuple[str, dict[str, Any]]:
    """(Optuna storage URL, engine kwargs) for the project database `db_url`."""
    url = make_url(db_url)
    if url.get_backend_name() == "sqlite":
        db = url.database or ""
        if db in ("", ":memory:"):
            raise ValueError("tuning needs a database file or server; in-memory SQLite is gone when the process ends")
        path = Path(db)
        return str(url.set(database=str(path.with_name(f"{path.stem}-tune{path.suffix or '.db'}")))), {}
    if url.get_backend_name() == "postgresql":
        _ensure_schema(db_url)
        return db_url, {"connect_args": {"options": f"-csearch_path={SCHEMA}"}, "pool_pre_ping": True}
    raise ValueError(f"unsupported database for tuning: {url.get_backend_name()} (use SQLite or PostgreSQL)")


def _ensure_schema(db_url: str) -> None:
    from sqlalchemy import create_engine, text

    engine = create_engine(db_url)
    try:
        with engine.begin() as conn:
            conn.execute(text(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}"))
    finally:
        engine.dispose()


def open_storage(db_url: str, heartbeat_interval: int | None = None, grace: int | None = None, max_retry: int = 2):
    """Optuna RDBStorage for the project database; with a heartbeat, dead workers' trials are re-run."""
    import warnings

    import optuna
    from optuna.storages import RDBStorage, RetryFailedTrialCallback

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    url, kwargs = tune_storage_url(db_url)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)  # heartbeats: "experimental" since 2.8
        hb = {}
        if heartbeat_interval:
            hb = {"heartbeat_interval": heartbeat_interval, "grace_period": grace,
                  "failed_trial_callback": RetryFailedTrialCallback(max_retry=max_retry, inherit_intermediate_values=False)}
        return RDBStorage(url, engine_kwargs=kwargs, **hb)

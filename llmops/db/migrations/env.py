"""Alembic environment: runs against the engine handed in by `llmops.db.upgrade`
(or LLMOPS_DATABASE_URL when alembic is run by hand)."""

from __future__ import annotations

import importlib

from alembic import context

from llmops.db.base import MODEL_MODULES, Base

for name in MODEL_MODULES:
    try:
        importlib.import_module(name)
    except ModuleNotFoundError as exc:  # a store not present in this build
        if exc.name != name:
            raise

config = context.config
engine = config.attributes.get("engine")
if engine is None:
    from llmops.db.engine import get_engine

    engine = get_engine()

# Any number of processes may run this at once (replicas starting together): on
# PostgreSQL they queue on one advisory lock, held until this migration's COMMIT.
MIGRATION_LOCK_KEY = 0x6C6C6D6F7073  # "llmops"
MIGRATION_LOCK_TIMEOUT = "120s"

with engine.connect() as connection:
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(f"SET lock_timeout = '{MIGRATION_LOCK_TIMEOUT}'")
        connection.exec_driver_sql("SET statement_timeout = 0")  # a big migration may take long
        connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK_KEY})")
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()

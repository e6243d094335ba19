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

with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()

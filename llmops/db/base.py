"""Declarative base shared by all stores, with a naming convention so that
constraint names are stable across SQLite and PostgreSQL (alembic needs them)."""

from __future__ import annotations

from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


# Modules that define tables on Base; alembic's env imports them so autogenerate sees
# every store. A subsystem adds its models module here.
MODEL_MODULES: list[str] = [
    "llmops.feedback.tables",
    "llmops.registry.tables",
    "llmops.monitor.tables",
    "llmops.train.tables",
]

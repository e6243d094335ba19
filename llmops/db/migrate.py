"""Schema state: what the database carries, what the code expects, and the check servers run.

Servers and read-only commands never migrate by surprise: they call `check_schema`,
which refuses to run against a database behind the code (a laptop pointed at
production must not rewrite it). Migrating is explicit: ``llmops db upgrade``, or a
server started with ``--migrate`` (advisory-locked, see `llmops.db.engine.upgrade`).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.exc import SQLAlchemyError

from llmops.errors import UserError


class SchemaBehind(UserError):
    """The database lacks migrations this code needs."""


@dataclass(frozen=True)
class SchemaState:
    current: tuple[str, ...]  # revisions recorded in alembic_version (empty: a new database)
    heads: tuple[str, ...]  # newest revision of each store's branch in this code

    @property
    def missing(self) -> tuple[str, ...]:
        """Heads not reached (the database is behind on those branches)."""
        from alembic.script import ScriptDirectory

        if not self.current:
            return self.heads
        script = ScriptDirectory.from_config(_config())
        reached: set[str] = set()
        for rev in self.current:
            reached.update(r.revision for r in script.iterate_revisions(rev, "base"))
        return tuple(h for h in self.heads if h not in reached)

    @property
    def up_to_date(self) -> bool:
        return not self.missing


def _config(url: str | None = None):
    from llmops.db.engine import alembic_config

    return alembic_config(url)


def schema_state(url: str | None = None) -> SchemaState:
    """Read the applied revisions (never writes; a missing version table means empty)."""
    from alembic.script import ScriptDirectory

    from llmops.db.engine import get_engine

    heads = tuple(sorted(ScriptDirectory.from_config(_config(url)).get_heads()))
    try:
        with get_engine(url).connect() as conn:
            current = tuple(sorted(conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalars()))
    except SQLAlchemyError:
        current = ()
    return SchemaState(current, heads)


def check_schema(url: str | None = None) -> SchemaState:
    """Raise `SchemaBehind` (naming the missing revisions and the fix) unless the schema is current."""
    state = schema_state(url)
    if not state.up_to_date:
        where = "an empty database" if not state.current else f"revisions {', '.join(state.current)}"
        raise SchemaBehind(
            f"the database schema is behind this code ({where}; missing {', '.join(state.missing)}): "
            "run `llmops db upgrade` (or start the server with --migrate)"
        )
    return state


def prepare(url: str | None, migrate: bool, *, create_if_empty: bool = False) -> SchemaState:
    """What a server or command does first: migrate when asked (advisory-locked), else check.

    `create_if_empty` lets a first write (``keys create`` on a fresh install) create the
    schema of an *empty* database; a database that has a schema is never upgraded
    without `migrate`.
    """
    if not migrate and create_if_empty and not schema_state(url).current:
        migrate = True
    if migrate:
        from llmops.db.engine import upgrade

        upgrade(url)
    return check_schema(url)

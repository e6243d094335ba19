"""Hot-path statements on the DBAPI cursor, compiled once per dialect by SQLAlchemy.

Why: `Connection.execute` of a cached Core statement still costs ~110-170 us here (cache
key, execution context, result set-up) where SQLite needs ~30 us to run the statement
itself; at 1,000 ratings/s the difference is over a tenth of a core on the event loop.
The SQL text and every bind conversion still come from SQLAlchemy (the same statement,
each parameter's type processor for the dialect), only the per-call machinery is skipped,
and driver errors become SQLAlchemy's exceptions as on the usual path. Only for fixed
statements on hot paths: no execution events run (llmops registers none on statements).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import ClauseElement


@dataclass(frozen=True)
class _Compiled:
    sql: str
    binds: tuple[tuple[str, Callable[[Any], Any] | None], ...]  # (name, type processor), in the driver's order
    positional: bool


class Prepared:
    """A Core statement run straight on the DBAPI cursor of a SQLAlchemy connection."""

    def __init__(self, statement: ClauseElement) -> None:
        self.statement = statement
        self._compiled: dict[tuple[str, str], _Compiled] = {}

    def _for(self, dialect: Dialect) -> _Compiled:
        key = (dialect.name, dialect.paramstyle)
        compiled = self._compiled.get(key)
        if compiled is None:
            c = self.statement.compile(dialect=dialect)
            names = tuple(c.positiontup or ()) if c.positional else tuple(c.binds)
            binds = tuple((name, c.binds[name].type.dialect_impl(dialect).bind_processor(dialect)) for name in names)
            compiled = self._compiled[key] = _Compiled(str(c), binds, bool(c.positional))
        return compiled

    def scalar(self, connection: Connection, params: Mapping[str, Any]) -> Any:
        """The first column of the first row (None when there is none), e.g. an INSERT's RETURNING id."""
        dialect = connection.dialect
        c = self._for(dialect)
        values = [(name, params[name] if process is None else process(params[name])) for name, process in c.binds]
        args: Any = [value for _, value in values] if c.positional else dict(values)
        cursor = connection.connection.dbapi_connection.cursor()
        try:
            try:
                cursor.execute(c.sql, args)
                row = cursor.fetchone()
            except dialect.loaded_dbapi.Error as exc:
                raise _sqlalchemy_error(c.sql, exc, dialect) from exc
            return None if row is None else row[0]
        finally:
            cursor.close()


def driver_sql(cursor: Any, sql: str, dialect: Dialect) -> None:
    """Execute fixed SQL text (no parameters) on a DBAPI cursor; driver errors become SQLAlchemy's."""
    try:
        cursor.execute(sql)
    except dialect.loaded_dbapi.Error as exc:
        raise _sqlalchemy_error(sql, exc, dialect) from exc


def _sqlalchemy_error(sql: str, exc: Exception, dialect: Dialect) -> DBAPIError:
    """The exception SQLAlchemy would raise (IntegrityError, OperationalError, ...), parameters hidden."""
    return DBAPIError.instance(sql, None, exc, dialect.loaded_dbapi.Error, hide_parameters=True, dialect=dialect)

"""`llmops db upgrade|current`: the one place (with a server's --migrate) where the schema changes."""

from __future__ import annotations

import argparse

DB_HELP = "database URL (default: $LLMOPS_DATABASE_URL, else SQLite at $LLMOPS_HOME/llmops.db)"


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "db",
        help="database schema: apply migrations, show the applied revisions",
        description="Servers refuse to start on a database behind the code; `llmops db upgrade` brings it up "
        "to date (PostgreSQL: under an advisory lock, so concurrent upgrades queue).",
    )
    sub = p.add_subparsers(dest="db_command", metavar="ACTION", required=True)
    u = sub.add_parser("upgrade", help="apply every store's pending migrations")
    u.add_argument("--db", help=DB_HELP)
    u.set_defaults(func=upgrade)
    c = sub.add_parser("current", help="the applied revisions and those this code expects (read-only)")
    c.add_argument("--db", help=DB_HELP)
    c.set_defaults(func=current)


def _show(state) -> None:
    print(f"current: {', '.join(state.current) or '(empty database)'}")
    print(f"heads:   {', '.join(state.heads)}")
    print("status:  up to date" if state.up_to_date else f"status:  behind (missing {', '.join(state.missing)})")


def upgrade(args: argparse.Namespace) -> int:
    from llmops.db.migrate import prepare

    _show(prepare(args.db, migrate=True))
    return 0


def current(args: argparse.Namespace) -> int:
    from llmops.db.migrate import schema_state

    state = schema_state(args.db)
    _show(state)
    return 0 if state.up_to_date else 1

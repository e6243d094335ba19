"""Migrations happen only when asked: servers check the schema, `--migrate` is advisory-locked,
read-only commands never migrate."""

from __future__ import annotations

import threading

from llmops.cli.main import main
from llmops.feedback.tables import FEEDBACK_HEAD

from .helpers import Server


def test_two_servers_migrating_an_empty_postgres_database_at_once(pg_url: str) -> None:
    from llmops.db.migrate import schema_state

    servers = [Server(pg_url, args=["--migrate"]) for _ in range(2)]
    errors: list[BaseException] = []

    def start(srv: Server) -> None:
        try:
            srv.start()
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=start, args=(s,)) for s in servers]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert not errors, errors
        state = schema_state(pg_url)
        assert state.up_to_date and len(state.current) == len(state.heads)
    finally:
        for s in servers:
            s.stop()


def test_servers_refuse_a_database_behind_the_code_and_readonly_commands_never_migrate(tmp_path, capsys) -> None:
    import pytest

    from llmops.db.migrate import schema_state

    db = f"sqlite:///{tmp_path / 'fresh.db'}"
    with pytest.raises(RuntimeError, match="schema is behind"):
        Server(db).start()
    assert main(["feedback", "keys", "list", "--db", db]) == 2
    assert "llmops db upgrade" in capsys.readouterr().err
    assert main(["feedback", "export", "--out", str(tmp_path / "x.jsonl"), "--db", db]) == 2
    assert schema_state(db).current == ()  # neither of them migrated
    assert main(["feedback", "keys", "create", "--role", "admin", "--db", db]) == 0  # a first write may create it
    assert schema_state(db).up_to_date


def test_an_existing_database_is_never_upgraded_implicitly(tmp_path, capsys) -> None:
    from alembic import command

    from llmops.db.engine import alembic_config, upgrade
    from llmops.db.migrate import schema_state

    db = f"sqlite:///{tmp_path / 'old.db'}"
    upgrade(db)
    command.downgrade(alembic_config(db), "feedback@feedback_0001")  # an older deployment's schema
    assert not schema_state(db).up_to_date
    assert main(["feedback", "keys", "create", "--role", "admin", "--db", db]) == 2  # refused, not migrated
    assert FEEDBACK_HEAD in capsys.readouterr().err
    assert not schema_state(db).up_to_date
    assert main(["db", "upgrade", "--db", db]) == 0 and schema_state(db).up_to_date

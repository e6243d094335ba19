"""Versions, artifacts, aliases, audit log and references, on SQLite and PostgreSQL."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError

from llmops.db import get_engine
from llmops.errors import UserError
from llmops.models.refs import resolve_model
from llmops.registry import api
from llmops.registry.artifacts import ArtifactError, ArtifactStore
from llmops.registry.entities import RegistryError

from .helpers import admin, make_eval_dir, make_model_dir


def test_register_copies_artifact_and_records_lineage(db_url, tmp_path, registry_root):
    src = make_model_dir(tmp_path / "m", "v1")
    (src / "llmops_model.json").write_text('{"base_ref": "builtin:tiny"}')
    mv = api.register_version("docs", src, lineage={"run_id": "r1", "recipe_hash": "abc"}, tags={"team": "x"},
                              db_url=db_url)
    assert (mv.name, mv.version) == ("docs", 1)
    assert mv.artifact_path == (registry_root / "models" / "docs" / "1").resolve()
    assert (mv.artifact_path / "model.safetensors").read_text() == "v1"
    assert mv.lineage == {"run_id": "r1", "recipe_hash": "abc", "base_model_ref": "builtin:tiny"}
    # the client's directory is never what the registry serves back
    (src / "model.safetensors").write_text("tampered")
    served = api.resolve_registry_ref("docs", version=1, db_url=db_url)
    assert served == mv.artifact_path and (served / "model.safetensors").read_text() == "v1"
    assert api.get_store(db_url).artifacts.verify(mv.artifact_uri, mv.sha256)


def test_deleted_numbers_are_never_reused(db_url, model_dir):
    for _ in range(3):
        api.register_version("m", model_dir, db_url=db_url)
    api.delete_version("m", 3, db_url=db_url, principal=admin())
    api.delete_version("m", 2, db_url=db_url, principal=admin())
    assert api.register_version("m", model_dir, db_url=db_url).version == 4
    assert [v.version for v in api.list_versions("m", db_url=db_url)] == [1, 4]
    with pytest.raises(RegistryError, match="no version 2"):
        api.resolve_registry_ref("m", version=2, db_url=db_url)


def test_aliases_resolve_through_model_refs(db_url, tmp_path, monkeypatch):
    monkeypatch.setenv("LLMOPS_DATABASE_URL", db_url)
    for i in range(3):
        api.register_version("docs", make_model_dir(tmp_path / f"m{i}", f"w{i}"))
    api.set_alias("docs", "production", 2, actor="alice", reason="ship")
    assert (resolve_model("registry:docs@production") / "model.safetensors").read_text() == "w1"
    assert (resolve_model("registry:docs/3") / "model.safetensors").read_text() == "w2"
    assert (resolve_model("registry:docs") / "model.safetensors").read_text() == "w2"  # latest
    with pytest.raises(UserError, match="no alias `staging`"):
        resolve_model("registry:docs@staging")
    with pytest.raises(RegistryError, match="reserved"):
        api.set_alias("docs", "latest", 1)


def test_every_alias_move_is_in_the_append_only_audit_log(db_url, model_dir):
    for _ in range(3):
        api.register_version("m", model_dir, db_url=db_url)
    api.set_alias("m", "production", 1, actor="alice", reason="first", db_url=db_url)
    api.set_alias("m", "production", 3, actor="bob", reason="better", db_url=db_url)
    api.set_alias("m", "staging", 2, actor="bob", db_url=db_url)
    api.set_alias("m", "production", None, actor="carol", reason="incident", db_url=db_url)
    moves = [(e.alias, e.from_version, e.to_version, e.actor, e.reason)
             for e in api.alias_history("m", db_url=db_url)]
    assert moves == [("production", None, 1, "local:alice", "first"), ("production", 1, 3, "local:bob", "better"),
                     ("staging", None, 2, "local:bob", ""), ("production", 3, None, "local:carol", "incident")]
    with pytest.raises(RegistryError, match="held by alias"):
        api.delete_version("m", 2, db_url=db_url, principal=admin())
    engine = get_engine(db_url)
    for stmt in ("UPDATE registry_alias_events SET actor = 'mallory'", "DELETE FROM registry_alias_events",
                 "UPDATE registry_versions SET artifact_uri = '../../etc'"):
        with pytest.raises(DBAPIError, match="append-only|immutable"):
            with engine.begin() as conn:
                conn.execute(sa.text(stmt))
    assert len(api.alias_history("m", db_url=db_url)) == 4


def test_promotion_log_rejects_delete_of_existing_rows(db_url, model_dir):
    api.register_version("m", model_dir, db_url=db_url)
    api.promote("m", 1, "staging", None, actor="alice", db_url=db_url)
    with pytest.raises(DBAPIError, match="append-only"):
        with get_engine(db_url).begin() as conn:
            conn.execute(sa.text("DELETE FROM registry_promotions"))
    assert [p.decision for p in api.get_store(db_url).promotions("m")] == ["accepted"]


def test_tags_mutable_identity_immutable(sqlite_url, model_dir):
    api.register_version("m", model_dir, tags={"a": "1"}, db_url=sqlite_url)
    mv = api.set_tags("m", 1, {"reviewed": "yes", "a": None}, db_url=sqlite_url)
    assert mv.tags == {"reviewed": "yes"}


@pytest.mark.parametrize("uri", ["../outside", "/etc", "m/../../x", "m/./1", "C:/x", "m\\..\\x", ""])
def test_artifact_uris_outside_the_store_are_refused(tmp_path, uri):
    store = ArtifactStore(tmp_path / "root", "r" * 32)
    with pytest.raises(ArtifactError):
        store.path(uri)


@pytest.mark.parametrize("name", ["../evil", "a/b", "..", ".hidden", "a..b", "x" * 200, ""])
def test_traversal_in_model_names_is_refused(sqlite_url, model_dir, name, registry_root):
    with pytest.raises(UserError, match="invalid model name"):
        api.register_version(name, model_dir, db_url=sqlite_url)
    assert not any(p for p in registry_root.rglob("*") if p.is_file() and p.name != ".llmops-registry.json")


def test_symlink_escaping_the_artifact_is_refused(sqlite_url, tmp_path):
    src = make_model_dir(tmp_path / "m")
    secret = tmp_path / "secret.txt"
    secret.write_text("password")
    os.symlink(secret, src / "leak.txt")
    with pytest.raises(ArtifactError, match="symlink leaving"):
        api.register_version("m", src, db_url=sqlite_url)


def test_tampered_uri_in_the_database_is_not_served(sqlite_url, model_dir):
    api.register_version("m", model_dir, db_url=sqlite_url)
    with get_engine(sqlite_url).begin() as conn:  # bypass the trigger the way an attacker with DB access would
        conn.execute(sa.text("DROP TRIGGER registry_versions_immutable"))
        conn.execute(sa.text("UPDATE registry_versions SET artifact_uri = '../../../etc'"))
    with pytest.raises(ArtifactError, match="path traversal"):
        api.resolve_registry_ref("m", version=1, db_url=sqlite_url)


def test_attach_eval_copies_results(db_url, model_dir, tmp_path):
    mv = api.register_version("m", model_dir, db_url=db_url)
    ev_dir = make_eval_dir(tmp_path / "ev", "docstrings", {"rougeL": 0.31}, model_hash=mv.sha256)
    ev = api.attach_eval("m", 1, ev_dir, db_url=db_url)
    assert ev.suite == "docstrings" and ev.scores() == {"rougeL": 0.31}
    assert ev.results_path != ev_dir and (ev.results_path / "results.json").is_file()
    with pytest.raises(UserError, match="no results.json"):
        api.attach_eval("m", 1, tmp_path, db_url=db_url)


def test_missing_artifact_and_unknown_model_errors(sqlite_url, tmp_path):
    with pytest.raises(ArtifactError, match="not found"):
        api.register_version("m", tmp_path / "nope", db_url=sqlite_url)
    with pytest.raises(RegistryError, match="no registered model named `ghost`"):
        api.resolve_registry_ref("ghost", alias="production", db_url=sqlite_url)


def test_registry_head_matches_migrations():
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from llmops.registry.tables import REGISTRY_HEAD

    cfg = Config()
    cfg.set_main_option("script_location", str(Path(api.__file__).parents[1] / "db" / "migrations"))
    heads = ScriptDirectory.from_config(cfg).get_revisions("registry@head")
    assert [h.revision for h in heads] == [REGISTRY_HEAD]


def test_saved_adapters_pin_a_moving_alias_to_its_version(tmp_path, model_dir, monkeypatch):
    """An adapter trained on registry:NAME@production must keep loading that base after the alias moves."""
    from llmops.models.refs import resolve
    from llmops.registry import api
    from llmops.train.tasks.sft import portable_ref

    monkeypatch.setenv("LLMOPS_DATABASE_URL", f"sqlite:///{tmp_path / 'pin.db'}")
    api.register_version("pinned", model_dir)
    api.register_version("pinned", model_dir)
    api.set_alias("pinned", "production", 1, actor="test", reason="first")
    assert portable_ref(resolve("registry:pinned@production")) == "registry:pinned/1"
    assert portable_ref(resolve("registry:pinned")) == "registry:pinned/2"  # bare name = latest
    assert portable_ref(resolve("registry:pinned/1")) == "registry:pinned/1"
    assert portable_ref(resolve(str(model_dir))) == str(model_dir.resolve())


def test_registry_0002_upgrades_a_populated_0001_database(db_url):
    """64-bit sizes, the immutability trigger kept, and a registry id, on a database with data."""
    from alembic import command
    from alembic.config import Config

    from llmops.db.engine import _MIGRATIONS

    engine = get_engine(db_url)
    cfg = Config()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    cfg.attributes["engine"] = engine
    command.upgrade(cfg, "registry_0001")
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO registry_models (id, name, description, next_version, created_at) "
                             "VALUES (1, 'old', '', 2, CURRENT_TIMESTAMP)"))
        conn.execute(sa.text(
            "INSERT INTO registry_versions (id, model_id, version, artifact_uri, artifact_sha256, artifact_bytes, "
            "lineage, tags, description, created_by, created_at) VALUES "
            "(1, 1, 1, 'old/1', :sha, 5, '{}', '{}', '', 'x', CURRENT_TIMESTAMP)"), {"sha": "a" * 64})
    command.upgrade(cfg, "heads")
    with engine.begin() as conn:
        assert conn.execute(sa.text("SELECT value FROM registry_meta WHERE key = 'registry_id'")).scalar_one()
        conn.execute(sa.text("UPDATE registry_versions SET tags = '{\"a\": \"1\"}'"))  # tags stay editable
    with pytest.raises(DBAPIError, match="immutable"):
        with engine.begin() as conn:
            conn.execute(sa.text(f"UPDATE registry_versions SET artifact_bytes = {5 << 32}"))
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            kind = conn.execute(sa.text("SELECT data_type FROM information_schema.columns WHERE "
                                        "table_name = 'registry_versions' AND column_name = 'artifact_bytes'"))
            assert kind.scalar_one() == "bigint"

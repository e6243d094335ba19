"""Artifacts that cannot be crossed: one registry per root, read-only versions, one model hash."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from llmops.cli.main import main
from llmops.db import get_engine
from llmops.models.hashing import model_hash, tree_digest
from llmops.registry import api
from llmops.registry.artifacts import ArtifactError, ArtifactStore, owned_uri

from .helpers import admin, make_key, make_model_dir

REPO = Path(__file__).resolve().parents[2]


def _snapshot(root: Path) -> dict[str, tuple]:
    """Every entry under root with its bytes, mode and mtime: "byte for byte unchanged"."""
    out = {}
    for p in sorted(root.rglob("*")):
        st = p.lstat()
        out[p.relative_to(root).as_posix()] = (p.read_bytes() if p.is_file() else None, st.st_mode, st.st_mtime_ns)
    return out


def test_two_databases_cannot_share_one_root(tmp_path, registry_root):
    db_a, db_b = f"sqlite:///{tmp_path / 'a.db'}", f"sqlite:///{tmp_path / 'b.db'}"
    mine = api.register_version("docs", make_model_dir(tmp_path / "a", "weights of A"), db_url=db_a)
    before = _snapshot(registry_root)
    with pytest.raises(ArtifactError, match=r"belongs to registry [0-9a-f]{32}, not to this database's registry"):
        api.register_version("docs", make_model_dir(tmp_path / "b", "weights of B"), db_url=db_b)
    assert _snapshot(registry_root) == before
    served = api.resolve_registry_ref("docs", version=1, db_url=db_a)
    assert (served / "model.safetensors").read_text() == "weights of A" and served == mine.artifact_path
    marker = json.loads((registry_root / ".llmops-registry.json").read_text())
    with get_engine(db_b).connect() as conn:
        id_b = conn.exec_driver_sql("SELECT value FROM registry_meta WHERE key = 'registry_id'").scalar_one()
    assert marker["registry_id"] == api.get_store(db_a).registry_id != id_b


def test_default_roots_are_private_to_each_registry(tmp_path, monkeypatch):
    monkeypatch.delenv("LLMOPS_REGISTRY_ROOT")
    monkeypatch.setenv("LLMOPS_HOME", str(tmp_path / "home"))
    db_a, db_b = f"sqlite:///{tmp_path / 'a.db'}", f"sqlite:///{tmp_path / 'b.db'}"
    a = api.register_version("docs", make_model_dir(tmp_path / "a", "A"), db_url=db_a)
    b = api.register_version("docs", make_model_dir(tmp_path / "b", "B"), db_url=db_b)
    assert (a.version, b.version) == (1, 1) and a.artifact_path != b.artifact_path
    assert (api.resolve_registry_ref("docs", version=1, db_url=db_a) / "model.safetensors").read_text() == "A"
    assert (api.resolve_registry_ref("docs", version=1, db_url=db_b) / "model.safetensors").read_text() == "B"
    api.delete_version("docs", 1, db_url=db_b, principal=admin())
    assert (a.artifact_path / "model.safetensors").read_text() == "A"


def test_an_unmarked_non_empty_root_is_refused(tmp_path):
    root = tmp_path / "someone-elses"
    make_model_dir(root / "docs" / "1")
    with pytest.raises(ArtifactError, match="not empty .* carries no registry marker"):
        ArtifactStore(root, "a" * 32)
    assert (root / "docs" / "1" / "model.safetensors").exists()


@pytest.mark.parametrize("uri", ["docs/1", "models", "models/docs", "../models/x/1", ".staging/x/y", "cards/x"])
def test_nothing_outside_own_folders_is_deleted(uri):
    with pytest.raises(ArtifactError):
        owned_uri(uri)


def test_versions_are_read_only_and_hash_like_the_harness(sqlite_url, tmp_path, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setenv("LLMOPS_HOME", str(home))
    src = make_model_dir(tmp_path / "m")
    (src / ".git").mkdir()
    (src / ".git" / "HEAD").write_text("ref")  # tooling state is not part of the model
    mv = api.register_version("m", src, db_url=sqlite_url)
    assert not (mv.artifact_path / ".git").exists()
    for p in [mv.artifact_path, *mv.artifact_path.rglob("*")]:
        assert stat.S_IMODE(p.stat().st_mode) & 0o222 == 0, p
    assert model_hash(src) == model_hash(mv.artifact_path) == tree_digest(src)[0] == mv.sha256
    assert sorted(p.name for p in mv.artifact_path.iterdir()) == ["config.json", "model.safetensors"]
    assert list((home / "cache" / "model-hashes").glob("*.json"))  # the cache lives under $LLMOPS_HOME
    api.delete_version("m", 1, db_url=sqlite_url, principal=admin())  # read-only folders still delete
    assert not mv.artifact_path.exists()


def test_hf_cache_snapshot_registers_with_symlinks_resolved(sqlite_url, tmp_path):
    repo = tmp_path / "hub" / "models--org--tiny"
    (repo / "blobs").mkdir(parents=True)
    snap = repo / "snapshots" / "abc123"
    (snap / "sub").mkdir(parents=True)
    files = {"config.json": b'{"model_type": "llama"}', "model.safetensors": b"w" * 1000, "sub/tok.json": b"{}"}
    for i, (rel, data) in enumerate(files.items()):
        blob = repo / "blobs" / f"blob{i}"
        blob.write_bytes(data)
        os.symlink(os.path.relpath(blob, (snap / rel).parent), snap / rel)
    mv = api.register_version("hub", snap, db_url=sqlite_url)
    for rel, data in files.items():
        stored = mv.artifact_path / rel
        assert not stored.is_symlink() and stored.read_bytes() == data
    assert mv.sha256 == model_hash(snap)
    outside = tmp_path / "secret"
    outside.write_text("x")
    os.symlink(outside, snap / "leak.txt")
    with pytest.raises(ArtifactError, match="symlink leaving"):
        api.register_version("hub", snap, db_url=sqlite_url)


def test_diff_streams_files(sqlite_url, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("LLMOPS_API_KEY", make_key(sqlite_url, "service"))
    api.register_version("d", make_model_dir(tmp_path / "a", "one"), db_url=sqlite_url)
    api.register_version("d", make_model_dir(tmp_path / "b", "two"), db_url=sqlite_url)

    def whole_file(self):  # pragma: no cover - the test fails if diff reads whole files
        raise AssertionError(f"diff read all of {self} into memory")

    monkeypatch.setattr(Path, "read_bytes", whole_file)
    assert main(["registry", "diff", "d", "1", "2", "--db", sqlite_url, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["files"]["changed"] == ["config.json", "model.safetensors"]


def test_eval_results_must_carry_the_version_hash(sqlite_url, tmp_path):
    from .helpers import make_eval_dir

    a = api.register_version("m", make_model_dir(tmp_path / "a", "A"), db_url=sqlite_url)
    b = api.register_version("m", make_model_dir(tmp_path / "b", "B"), db_url=sqlite_url)
    wrong = make_eval_dir(tmp_path / "ev", "s", {"acc": 0.5}, model_hash=b.sha256)
    with pytest.raises(api.RegistryError, match=rf"evaluated model hash {b.sha256[:12]}… is not m/1's hash"):
        api.attach_eval("m", a.version, wrong, db_url=sqlite_url)
    none = make_eval_dir(tmp_path / "ev2", "s", {"acc": 0.5})
    with pytest.raises(api.RegistryError, match="no model hash"):
        api.attach_eval("m", a.version, none, db_url=sqlite_url)
    assert api.attach_eval("m", b.version, wrong, db_url=sqlite_url).model_hash == b.sha256


def test_evaluating_a_registry_ref_leaves_the_version_byte_identical(sqlite_url, tmp_path, monkeypatch, capsys):
    from llmops.eval.api import evaluate
    from llmops.models.builtin import materialize

    monkeypatch.setenv("LLMOPS_DATABASE_URL", sqlite_url)
    mv = api.register_version("tiny", materialize("tiny"))
    before = _snapshot(mv.artifact_path)
    results = evaluate("registry:tiny/1", REPO / "eval" / "docstring_summary.yaml", tmp_path / "ev", limit=2,
                       max_new_tokens=4, use_cache=False)
    assert _snapshot(mv.artifact_path) == before
    assert results["provenance"]["artifact_hash"] == mv.sha256
    assert main(["registry", "show", "tiny/1", "--verify"]) == 0 and "verified: True" in capsys.readouterr().out
    monkeypatch.setenv("LLMOPS_API_KEY", make_key(sqlite_url, "service"))
    assert main(["registry", "attach-eval", "tiny/1", str(tmp_path / "ev")]) == 0


@pytest.mark.slow
def test_artifacts_over_2_gib_register_on_postgres(pg_url, tmp_path, registry_root):
    src = make_model_dir(tmp_path / "big")
    size = (2 << 30) + 12345  # past the 32-bit integer range
    with open(src / "model-00001.safetensors", "wb") as fh:
        fh.truncate(size)  # sparse: no disk, but every byte is read and hashed
    mv = api.register_version("big", src, db_url=pg_url)
    assert mv.n_bytes == size + len("weights") + (src / "config.json").stat().st_size
    assert api.get_version("big", 1, db_url=pg_url).n_bytes == mv.n_bytes
    stored = mv.artifact_path / "model-00001.safetensors"
    assert stored.stat().st_size == size and stored.stat().st_blocks * 512 < 1 << 20  # stayed sparse

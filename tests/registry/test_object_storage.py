"""Artifacts in object storage: an S3-compatible server (moto) the test starts on 127.0.0.1."""

from __future__ import annotations

import os
import uuid

import pytest

from llmops.registry import api
from llmops.registry.artifacts import ArtifactError

from .helpers import admin, make_eval_dir, make_model_dir


def _need(module: str):
    try:
        return pytest.importorskip(module)
    except pytest.skip.Exception:
        if os.environ.get("CI"):
            pytest.fail(f"{module} is part of the dev extra and required in CI")
        raise


@pytest.fixture(scope="module")
def s3_endpoint():
    _need("s3fs")
    server_mod = _need("moto.server")
    server = server_mod.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3_root(s3_endpoint, monkeypatch, tmp_path):
    import fsspec

    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": s3_endpoint}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("LLMOPS_HOME", str(tmp_path / "home"))  # the download cache
    bucket = f"reg-{uuid.uuid4().hex[:8]}"
    fs = fsspec.filesystem("s3", skip_instance_cache=True)
    fs.mkdir(bucket)
    root = f"s3://{bucket}/team"
    monkeypatch.setenv("LLMOPS_REGISTRY_ROOT", root)
    return fs, bucket, root


def test_register_resolve_verify_through_s3(sqlite_url, tmp_path, s3_root):
    fs, bucket, root = s3_root
    mv = api.register_version("docs", make_model_dir(tmp_path / "m", "s3 weights"), db_url=sqlite_url)
    assert fs.exists(f"{bucket}/team/models/docs/1/model.safetensors")
    assert fs.exists(f"{bucket}/team/models/docs/1/.llmops-commit.json")
    assert fs.exists(f"{bucket}/team/cards/docs/1/README.md")
    assert not fs.ls(f"{bucket}/team/.staging") if fs.exists(f"{bucket}/team/.staging") else True
    local = api.resolve_registry_ref("docs", version=1, db_url=sqlite_url)
    assert (local / "model.safetensors").read_text() == "s3 weights"
    assert str(local).startswith(os.environ["LLMOPS_HOME"])  # a cached download
    store = api.get_store(sqlite_url)
    assert store.artifacts.verify(mv.artifact_uri, mv.sha256)
    # evaluations travel the same way and the gates read them back through the cache
    ev = api.attach_eval("docs", 1, make_eval_dir(tmp_path / "ev", "s", {"acc": 0.5}, model_hash=mv.sha256),
                         db_url=sqlite_url)
    assert (store.eval_dir(ev) / "results.json").is_file()
    assert "model-index" in api.card("docs", 1, db_url=sqlite_url)
    api.delete_version("docs", 1, db_url=sqlite_url, principal=admin())
    fs.invalidate_cache()
    assert not fs.exists(f"{bucket}/team/models/docs/1") and not local.exists()


def test_a_second_registry_cannot_use_the_same_bucket_prefix(tmp_path, s3_root):
    api.register_version("docs", make_model_dir(tmp_path / "a"), db_url=f"sqlite:///{tmp_path / 'a.db'}")
    with pytest.raises(ArtifactError, match="belongs to registry"):
        api.register_version("docs", make_model_dir(tmp_path / "b"), db_url=f"sqlite:///{tmp_path / 'b.db'}")


def test_tampered_objects_are_refused_on_download(sqlite_url, tmp_path, s3_root):
    fs, bucket, _ = s3_root
    mv = api.register_version("docs", make_model_dir(tmp_path / "m", "good"), db_url=sqlite_url)
    fs.pipe_file(f"{bucket}/team/models/docs/1/model.safetensors", b"evil")
    with pytest.raises(ArtifactError, match="the stored object was changed"):
        api.resolve_registry_ref("docs", version=1, db_url=sqlite_url)
    assert not api.get_store(sqlite_url).artifacts.verify(mv.artifact_uri, mv.sha256)
    assert not (api.get_store(sqlite_url).artifacts.path(mv.artifact_uri)).exists()


def test_an_interrupted_upload_registers_nothing(sqlite_url, tmp_path, s3_root, monkeypatch):
    fs, bucket, _ = s3_root
    store = api.get_store(sqlite_url)

    def broken_copy(*args, **kwargs):
        raise OSError("connection reset")

    monkeypatch.setattr(store.artifacts.fs, "copy", broken_copy)
    with pytest.raises(OSError, match="connection reset"):
        api.register_version("docs", make_model_dir(tmp_path / "m"), db_url=sqlite_url)
    monkeypatch.undo()
    fs.invalidate_cache()
    assert not fs.exists(f"{bucket}/team/models/docs/1/.llmops-commit.json")
    assert not fs.exists(f"{bucket}/team/.staging") or not fs.ls(f"{bucket}/team/.staging")
    with pytest.raises(api.RegistryError):
        api.get_version("docs", 1, db_url=sqlite_url)

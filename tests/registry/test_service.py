"""`llmops registry serve` over real HTTP, and the CLI pointed at it with --registry-url."""

from __future__ import annotations

import io
import json
import socket
import tarfile
import threading
import time

import httpx
import pytest
import uvicorn

from llmops.cli.main import main
from llmops.cli.registry_http import build_app
from llmops.registry import api, governance

from .helpers import admin, make_eval_dir, make_key, make_model_dir


@pytest.fixture
def server(sqlite_url):
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    srv = uvicorn.Server(uvicorn.Config(build_app(sqlite_url), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.time() + 20
    while not srv.started and time.time() < deadline:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(10)


def _tar(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_every_endpoint_needs_a_key_and_a_role(server, sqlite_url):
    assert httpx.get(f"{server}/v1/models").status_code == 401
    bad = httpx.get(f"{server}/v1/models", headers={"Authorization": "Bearer llmf_0123456789ab_nope"})
    assert bad.status_code == 401 and bad.json()["error"] == "unauthenticated"
    rater = {"Authorization": f"Bearer {make_key(sqlite_url, 'rater')}"}
    assert httpx.get(f"{server}/v1/models", headers=rater).json() == []
    upload = _tar({"artifact/config.json": b"{}"})
    denied = httpx.post(f"{server}/v1/models/docs/versions", content=upload, headers=rater)
    assert denied.status_code == 403 and "may not register" in denied.json()["detail"]
    service = {"Authorization": f"Bearer {make_key(sqlite_url, 'service')}"}
    for body, why in ((b"not a tar", "not a readable tar"), (_tar({"x/config.json": b"{}"}), "artifact/"),
                      (_tar({"artifact/../../escape.json": b"{}"}), "not a readable tar")):
        r = httpx.post(f"{server}/v1/models/docs/versions", content=body, headers=service)
        assert r.status_code == 400 and why in r.json()["detail"], r.text
    assert httpx.get(f"{server}/v1/models/ghost/versions/1", headers=service).status_code == 404


def test_cli_against_the_server(server, sqlite_url, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("LLMOPS_API_KEY", make_key(sqlite_url, "service", "trainer-7"))
    url = ["--registry-url", server]
    lin = tmp_path / "lin.json"
    lin.write_text(json.dumps({"base_model_ref": "builtin:tiny", "run_id": "r1"}))
    assert main(["registry", "register", "docs", str(make_model_dir(tmp_path / "a", "A")), "--lineage", str(lin),
                 "--tag", "reviewed=yes", "--json", *url]) == 0
    mv = json.loads(capsys.readouterr().out)
    assert mv["version"] == 1 and mv["created_by"].endswith(":trainer-7")
    local = api.get_version("docs", 1, db_url=sqlite_url)  # the server wrote to its own database and store
    assert local.sha256 == mv["sha256"] and (local.artifact_path / "model.safetensors").read_text() == "A"
    assert main(["registry", "list", "--json", *url]) == 0
    assert json.loads(capsys.readouterr().out)[0]["name"] == "docs"
    assert main(["registry", "card", "docs/1", *url]) == 0 and "base_model: builtin:tiny" in capsys.readouterr().out
    ev = make_eval_dir(tmp_path / "ev", "docstrings", {"rougeL": 0.3}, model_hash=mv["sha256"])
    assert main(["registry", "attach-eval", "docs/1", str(ev), *url]) == 0
    assert "attached docstrings results" in capsys.readouterr().out
    assert api.get_store(sqlite_url).evals("docs", 1)[0].attached_by.endswith(":trainer-7")
    wrong = make_eval_dir(tmp_path / "ev2", "docstrings", {"rougeL": 0.3}, model_hash="f" * 64)
    assert main(["registry", "attach-eval", "docs/1", str(wrong), *url]) == 2
    assert "is not docs/1's hash" in capsys.readouterr().err
    assert main(["registry", "lineage", "docs", "--format", "dot", *url]) == 0
    assert "digraph" in capsys.readouterr().out
    # a protected alias: gates from the stored policy, `alias` refused, promotion judged
    gates = tmp_path / "g.yaml"
    gates.write_text("aliases:\n  production:\n    rules:\n      - {type: required_tags, tags: {signed: 'yes'}}\n")
    governance.set_policy(api.get_store(sqlite_url), admin(), "docs", "production", gates)
    assert main(["registry", "alias", "docs", "production", "1", *url]) == 2
    assert "protected" in capsys.readouterr().err
    assert main(["registry", "promote", "docs/1", "--to", "production", *url]) == 1
    assert "missing tag(s) signed=yes" in capsys.readouterr().err
    api.set_tags("docs", 1, {"signed": "yes"}, db_url=sqlite_url)
    assert main(["registry", "promote", "docs/1", "--to", "production", "--reason", "ok", *url]) == 0
    assert "is now `production` (accepted)" in capsys.readouterr().out
    assert main(["registry", "show", "docs@production", "--json", *url]) == 0
    assert json.loads(capsys.readouterr().out)["version"] == 1
    assert main(["registry", "alias", "docs", "staging", "1", *url]) == 0
    events = api.alias_history("docs", db_url=sqlite_url)
    assert [(e.alias, e.actor.endswith(":trainer-7")) for e in events] == [("production", True), ("staging", True)]


def test_uploads_are_bounded(sqlite_url):
    from fastapi.testclient import TestClient

    from llmops.registry.governance import Principal
    from llmops.registry.service import create_app

    app = create_app(api.get_store(sqlite_url), lambda token: Principal("key:t", "service"), max_upload_bytes=100)
    with TestClient(app) as http:
        r = http.post("/v1/models/docs/versions", content=b"x" * 1000, headers={"Authorization": "Bearer t"})
    assert r.status_code == 413 and r.json()["error"] == "too_large"
    assert api.list_models(db_url=sqlite_url) == []


def test_a_machine_with_only_the_url_resolves_registry_refs(server, sqlite_url, tmp_path, monkeypatch):
    from llmops.models.refs import resolve

    mv = api.register_version("docs", make_model_dir(tmp_path / "m", "served weights"), db_url=sqlite_url)
    api.set_alias("docs", "production", 1, db_url=sqlite_url)
    monkeypatch.setenv("LLMOPS_HOME", str(tmp_path / "other-machine"))
    monkeypatch.setenv("LLMOPS_DATABASE_URL", f"sqlite:///{tmp_path / 'unrelated.db'}")  # not the registry's
    monkeypatch.setenv("LLMOPS_REGISTRY_URL", server)
    monkeypatch.setenv("LLMOPS_API_KEY", make_key(sqlite_url, "rater"))  # reading needs only the rater role
    got = resolve("registry:docs@production")
    assert (got.path / "model.safetensors").read_text() == "served weights"
    assert got.path.is_relative_to(tmp_path / "other-machine") and got.own_sha256 == mv.sha256
    assert got.registry_version == 1

"""A promotion in the registry is picked up without a restart."""

from __future__ import annotations

import shutil
import time

import httpx
import pytest

from .helpers import client_key, metric_samples, tiny_dir


def perturbed_copy(src, dst):
    """A second 'version': the built-in model with seeded noise on its weights (answers differently)."""
    import torch
    from transformers import AutoModelForCausalLM

    shutil.copytree(src, dst)
    model = AutoModelForCausalLM.from_pretrained(str(dst), dtype=torch.float32)
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=gen) * 0.05)
    model.save_pretrained(str(dst))
    return dst


@pytest.mark.slow
def test_alias_move_swaps_the_model_without_restart(tmp_path, monkeypatch) -> None:
    from llmops.feedback.store import FeedbackStore
    from llmops.registry.api import register_version, set_alias
    from llmops.serve.app import create_app
    from llmops.serve.server import ServerThread

    monkeypatch.setenv("LLMOPS_REGISTRY_ROOT", str(tmp_path / "artifacts"))
    db = f"sqlite:///{tmp_path / 'llmops.db'}"
    v1 = register_version("docs", tiny_dir(), db_url=db)
    v2 = register_version("docs", perturbed_copy(tiny_dir(), tmp_path / "v2"), db_url=db)
    set_alias("docs", "production", v1.version, db_url=db)

    app = create_app("registry:docs@production", db_url=db, max_wait_ms=0, poll_interval_s=0.2,
                     torch_threads=1, rate_limit_per_s=None)
    body = {"prompt": "Return the", "max_tokens": 12, "temperature": 0}
    auth = {"Authorization": f"Bearer {client_key(db, 'hot-swap-client')}"}
    with ServerThread(app) as srv, httpx.Client(base_url=srv.url, timeout=120, headers=auth) as c:
        first = c.post("/v1/completions", json=body).json()
        assert first["model"] == "registry:docs/1" and first["llmops"]["model_version"] == "docs/1"
        assert first["llmops"]["model"] == "registry:docs@production"
        assert first["llmops"]["model_sha256"] == v1.sha256

        set_alias("docs", "production", v2.version, db_url=db)
        deadline = time.monotonic() + 60
        while c.get("/v1/models").json()["data"][0]["llmops"]["model_version"] != "docs/2":
            assert time.monotonic() < deadline, "the alias move was not picked up"
            # requests keep being answered while the new version loads
            assert c.post("/v1/completions", json=body).status_code == 200
            time.sleep(0.1)

        second = c.post("/v1/completions", json=body).json()
        assert second["model"] == "registry:docs/2" and second["llmops"]["model_version"] == "docs/2"
        assert second["llmops"]["model_sha256"] == v2.sha256
        assert second["choices"][0]["text"] != first["choices"][0]["text"]
        # a client pinning the old version is told it is gone; the new one is accepted
        assert c.post("/v1/completions", json={**body, "model": "registry:docs/1"}).status_code == 404
        assert c.post("/v1/completions", json={**body, "model": "registry:docs/2"}).status_code == 200
        assert metric_samples(c.get("/metrics").text, "llmops_serve_model_swaps")[
            ("llmops_serve_model_swaps_total",)] == 1.0
        assert c.get("/healthz").json()["model"]["swaps"] == 1

    store = FeedbackStore(db, migrate=False)
    old = store.get_item(first["llmops"]["item_id"]).responses[0]
    new = store.get_item(second["llmops"]["item_id"]).responses[0]
    assert (old.model, old.model_version) == ("registry:docs@production", "docs/1")
    assert (new.model, new.model_version) == ("registry:docs@production", "docs/2")

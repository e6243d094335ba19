"""One real server (uvicorn on a free loopback port) with the built-in model, shared by the serving tests."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from .helpers import Served, client_key


@pytest.fixture(scope="session")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    from llmops.serve.app import create_app
    from llmops.serve.server import ServerThread

    tmp = tmp_path_factory.mktemp("serve")
    db_url = f"sqlite:///{tmp / 'llmops.db'}"
    # A generous wait makes concurrent test requests land in one batch despite a busy CPU;
    # one torch thread avoids OpenMP spin-waits when other test processes share the cores.
    app = create_app("builtin:tiny", db_url=db_url, max_batch_size=8, max_wait_ms=150, torch_threads=1,
                     request_log=str(tmp / "requests.jsonl"), migrate=True, rate_limit_per_s=None)
    token = client_key(db_url, "test-client")
    with ServerThread(app) as srv, httpx.Client(base_url=srv.url, timeout=120,
                                                headers={"Authorization": f"Bearer {token}"}) as client:
        yield Served(srv.url, db_url, client, app, tmp / "requests.jsonl")

"""Fixtures of the feedback tests: an app per database, one API key per role, a real uvicorn server."""

from __future__ import annotations

import pytest

from .helpers import Keys, Server, make_keys


@pytest.fixture
def keys(db_url: str) -> Keys:
    return make_keys(db_url)


@pytest.fixture
def keys_sqlite(sqlite_url: str) -> Keys:
    return make_keys(sqlite_url)


@pytest.fixture
def client(db_url: str, keys: Keys):
    from fastapi.testclient import TestClient

    from llmops.feedback.api import create_app

    with TestClient(create_app(db_url), raise_server_exceptions=False, base_url="http://localhost") as c:
        yield c


@pytest.fixture
def server_factory():
    started: list[Server] = []

    def start(db_url: str, workers: int = 1) -> Server:
        srv = Server(db_url, workers).start()
        started.append(srv)
        return srv

    yield start
    for srv in started:
        srv.stop()

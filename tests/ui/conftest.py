"""Fixtures of the UI tests: a database with keys, run folders, a real `llmops ui` server (the `browser`
fixture is tests/conftest.py's)."""

from __future__ import annotations

from pathlib import Path

import pytest

from .helpers import Keys, UiServer, make_keys


@pytest.fixture(scope="module")
def ui_env(tmp_path_factory) -> dict:
    """A fresh SQLite database with keys and an (initially empty) runs folder, shared by a module."""
    root = tmp_path_factory.mktemp("ui")
    url = f"sqlite:///{root / 'llmops.db'}"
    runs = root / "runs"
    runs.mkdir()
    return {"url": url, "runs": runs, "keys": make_keys(url), "root": root}


@pytest.fixture(scope="module")
def ui_server_factory():
    started: list[UiServer] = []

    def start(db_url: str, runs_dirs: list[Path], args: list[str] | None = None) -> UiServer:
        srv = UiServer(db_url, runs_dirs, args).start()
        started.append(srv)
        return srv

    yield start
    for srv in started:
        srv.stop()


@pytest.fixture
def keys(ui_env: dict) -> Keys:
    return ui_env["keys"]


@pytest.fixture(scope="session")
def bench_root(tmp_path_factory) -> Path:
    """A real `llmops bench` of two small random models on the docstring suite (8 samples, with a speed pass)."""
    from llmops.eval.bench import run_bench
    from llmops.resources import path as resource_path

    from .helpers import build_random_llama

    root = tmp_path_factory.mktemp("evals")
    a = build_random_llama(root / "models" / "a", seed=0)
    b = build_random_llama(root / "models" / "b", seed=1)
    run_bench([str(a), str(b)], [resource_path("eval") / "docstring_summary.yaml"], root / "bench",
              labels=["base", "cand"], limit=8, max_new_tokens=8, speed_prompts_n=2, speed_new_tokens=4,
              speed_batch_size=2, speed_repeats=1)
    return root

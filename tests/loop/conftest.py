"""One fast quickstart per test session; the loop tests work on copies of its output.

Torch is pinned to one thread (as in the training tests): on a shared 2-core machine two
OpenMP threads per process spin against other processes and run many times slower.
"""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def one_thread_session():
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def quickstart_fast(tmp_path_factory, one_thread_session) -> dict:
    """The facts of `llmops quickstart --fast` (run once; tests must not modify its directory)."""
    from llmops.loop.quickstart import run_quickstart

    out = tmp_path_factory.mktemp("quickstart")
    facts = run_quickstart(out, fast=True)
    return facts


@pytest.fixture
def loop_world(quickstart_fast, tmp_path, monkeypatch) -> dict:
    """A private copy of the quickstart's database and registry artifacts."""
    src = Path(quickstart_fast["out_dir"])
    dst = tmp_path / "world"
    dst.mkdir()
    with sqlite3.connect(src / "llmops.db") as a, sqlite3.connect(dst / "llmops.db") as b:
        a.backup(b)  # consistent copy, including what is still in the WAL
    shutil.copytree(src / "registry", dst / "registry")
    db = f"sqlite:///{dst / 'llmops.db'}"
    monkeypatch.setenv("LLMOPS_REGISTRY_ROOT", str(dst / "registry"))
    monkeypatch.setenv("LLMOPS_DATABASE_URL", db)
    return {"dir": dst, "db": db, "facts": quickstart_fast}

"""Fixtures for the training tests.

Tests pin torch to one thread (restored afterwards): on this shared 2-core machine two
OpenMP threads per process spin against other processes and run >10x slower; bitwise
comparisons across processes also need the same thread count everywhere
(subprocesses get ``OMP_NUM_THREADS=1`` from `helpers.subprocess_env`).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from train.helpers import make_records


@pytest.fixture(autouse=True)
def one_thread(monkeypatch):
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    monkeypatch.setenv("LLMOPS_THREADS", "1")  # the engine's thread policy (llmops.train.threads) agrees
    yield
    torch.set_num_threads(before)


@pytest.fixture
def data_file(tmp_path: Path) -> Path:
    path = tmp_path / "train.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in make_records(24)))
    return path




@pytest.fixture(scope="module")
def data_file_module(tmp_path_factory) -> Path:
    """`data_file` shared by a module's tests (for a reference run computed once)."""
    path = tmp_path_factory.mktemp("data") / "train.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in make_records(24)))
    return path

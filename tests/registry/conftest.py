"""Registry fixtures: an isolated artifact root per test and small fake model directories."""

from __future__ import annotations

from pathlib import Path

import pytest

from .helpers import make_model_dir


@pytest.fixture(autouse=True)
def registry_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "artifacts"
    monkeypatch.setenv("LLMOPS_REGISTRY_ROOT", str(root))
    return root


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    return make_model_dir(tmp_path / "model")

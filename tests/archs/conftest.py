"""Session-wide tiny models of every family (built once per test worker, ~0.3 s each)."""

from __future__ import annotations

from pathlib import Path

import pytest

from archs.families import FAMILIES, build, preference_records, records, write_jsonl
from train.conftest import one_thread  # noqa: F401 - the same autouse 1-thread pin as the training tests


@pytest.fixture(scope="session")
def family_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("families")


@pytest.fixture(scope="session")
def family_model(family_root):
    """`family_model(name, seed=0)` -> directory of that family's tiny model (built on first use)."""
    built: dict[tuple[str, int], Path] = {}

    def get(name: str, seed: int = 0) -> Path:
        if (name, seed) not in built:
            built[(name, seed)] = build(name, family_root / f"{name}-{seed}", seed=seed)
        return built[(name, seed)]

    return get


@pytest.fixture(scope="session")
def family_data(family_root) -> dict[str, Path]:
    return {
        "sft": write_jsonl(family_root / "sft.jsonl", records(16)),
        "pref": write_jsonl(family_root / "pref.jsonl", preference_records(16)),
    }


ALL = sorted(FAMILIES)

"""Fixtures of the foundation tests: the cached built-in tokenizer and a tiny random Llama."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def tiny_dir():
    """The real cached builtin:tiny (built once per $LLMOPS_HOME)."""
    from llmops.models.builtin import materialize

    return materialize("tiny")


@pytest.fixture(scope="session")
def tokenizer(tiny_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(tiny_dir))

"""Helpers of the serving tests."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import httpx


@dataclass
class Served:
    url: str
    db_url: str
    client: httpx.Client
    app: object
    request_log: Path


def rater_key(db_url: str, name: str) -> str:
    """A feedback API key with the rater role (what `llmops feedback keys create --role rater` prints)."""
    from llmops.db import session_factory
    from llmops.feedback.auth import create_key

    with session_factory(db_url)() as s, s.begin():
        return create_key(s, "rater", name).token


def client_key(db_url: str, name: str, role: str = "client") -> str:
    """A key allowed to generate (what `llmops feedback keys create --role client` prints)."""
    from llmops.db import session_factory
    from llmops.feedback.auth import create_key

    with session_factory(db_url)() as s, s.begin():
        return create_key(s, role, name).token


def metric_samples(text: str, name: str) -> dict[tuple, float]:
    """{(sample name, labels...): value} of one metric family in a Prometheus exposition."""
    from prometheus_client.parser import text_string_to_metric_families

    out = {}
    for family in text_string_to_metric_families(text):
        if family.name == name:
            for s in family.samples:
                out[(s.name, *sorted(s.labels.items()))] = s.value
    return out


def tiny_dir() -> Path:
    from llmops.models.builtin import materialize

    return materialize("tiny")

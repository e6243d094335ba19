"""Fixtures of the data-report tests: small files with planted duplicates and a planted leak."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from train.helpers import make_records

LEAKED = "Compute the checksum of every block in the archive and report which blocks were corrupted in transit."


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture
def train_rows() -> list[dict]:
    rows = make_records(30, seed=3)
    long = ("Open the configuration file, parse every section into a dictionary of options, validate the "
            "types of all values against the schema and return the merged settings object to the caller.")
    rows.append({"prompt": long, "completion": "Parse the configuration."})  # index 30
    rows.append({"prompt": long.replace("caller", "user"), "completion": "Parse the configuration."})  # near dup of 30
    rows.append({"prompt": "  " + rows[0]["prompt"].upper() + " ", "completion": rows[0]["completion"]})  # exact (normalised) dup of 0
    rows.append({"prompt": f"Summarise: {LEAKED}", "completion": "Check the archive."})  # the leak
    rows.append({"prompt": "Caf\u00c3\u00a9 menu", "completion": "   "})  # mojibake + whitespace-only
    return rows


@pytest.fixture
def suite_file(tmp_path: Path) -> Path:
    items = [{"text": "Sort the items of the list by the given key function and return a new list in ascending order."},
             {"text": LEAKED},
             {"text": "Join the path parts with the separator of the current operating system, collapsing duplicates."}]
    write_jsonl(tmp_path / "items.jsonl", items)
    suite = tmp_path / "leak.yaml"
    suite.write_text("name: leak\ntask: perplexity\ndataset:\n  path: items.jsonl\ntext: text\nmetrics: [perplexity]\n"
                     "generation:\n  batch_size: 4\nseed: 0\n")
    return suite

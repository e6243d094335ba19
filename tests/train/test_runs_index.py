"""The runs index (`llmops.train.runs_index`): scan, upsert, prune, filter, page — on SQLite and PostgreSQL;
and the training engine's hook filling it when a real run starts and ends."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from llmops.train import runs_index as ri


def write_run(root: Path, name: str, *, task: str = "sft", status: str = "completed", recipe: str = "sft_lora",
              tags: list[str] | None = None, started: str = "2026-11-01T10:00:00+00:00", loss: float = 1.0) -> Path:
    """A run folder as the engine leaves it (manifest keys the index reads)."""
    d = root / name
    d.mkdir(parents=True)
    manifest = {
        "run_id": f"id-{name}", "started_at": started, "status": status, "recipe_name": task,
        "recipe_source": f"/somewhere/recipes/{recipe}.yaml",
        "recipe": {"recipe": task, "card": {"tags": tags or []}},
        "base_model_ref": "builtin:tiny", "steps_completed": 10, "max_steps": 10, "wall_time_s": 3.5,
        "tokens_per_s": 123.0, "final_metrics": {"train_loss": loss, "eval_loss": loss + 0.5},
    }
    (d / "manifest.json").write_text(json.dumps(manifest))
    return d


def test_scan_is_idempotent_and_filters_page_in_sql(db_url, tmp_path):
    root = tmp_path / "runs"
    write_run(root, "a", tags=["baseline", "docs"], started="2026-11-01T10:00:00+00:00")
    write_run(root, "b", task="dpo", recipe="dpo", status="failed", started="2026-11-02T10:00:00+00:00")
    write_run(root / "study", "trial-1", tags=["docs"], started="2026-11-03T10:00:00+00:00")
    (root / "a" / "checkpoints" / "step-5").mkdir(parents=True)  # not a run: inside one
    (root / "notes").mkdir()
    (root / "broken").mkdir()
    (root / "broken" / "manifest.json").write_text("{not json")

    first = ri.scan_runs([root], db_url)
    assert (first.indexed, first.unchanged, first.pruned) == (3, 0, 0)
    assert len(first.skipped) == 1 and "broken" in first.skipped[0]
    again = ri.scan_runs([root], db_url)
    assert (again.indexed, again.unchanged) == (0, 3)

    page = ri.list_runs(db_url)
    assert [r.name for r in page.runs] == ["trial-1", "b", "a"] and page.total == 3
    assert [r.name for r in ri.list_runs(db_url, task="dpo").runs] == ["b"]
    assert [r.name for r in ri.list_runs(db_url, status="completed", tag="docs").runs] == ["trial-1", "a"]
    assert [r.name for r in ri.list_runs(db_url, recipe="dpo").runs] == ["b"]
    assert [r.name for r in ri.list_runs(db_url, q="trial").runs] == ["trial-1"]
    assert ri.list_runs(db_url, q="%").total == 0  # LIKE wildcards are literal
    two = ri.list_runs(db_url, page=2, per_page=2)
    assert [r.name for r in two.runs] == ["a"] and two.pages == 2
    a = next(r for r in page.runs if r.name == "a")
    assert a.tags == ("baseline", "docs") and a.throughput_unit == "tokens_per_s" and a.eval_loss == 1.5
    assert ri.facets(db_url) == {"recipe": ["dpo", "sft_lora"], "task": ["dpo", "sft"],
                                 "status": ["completed", "failed"], "tag": ["baseline", "docs"]}

    # A changed manifest is re-read (tags replaced); a vanished folder is pruned.
    m = json.loads((root / "a" / "manifest.json").read_text())
    m["recipe"]["card"]["tags"], m["status"] = ["final"], "running"
    (root / "a" / "manifest.json").write_text(json.dumps(m))
    os.utime(root / "a" / "manifest.json", (time.time() + 5, time.time() + 5))
    (root / "b" / "manifest.json").unlink()
    third = ri.scan_runs([root], db_url)
    assert (third.indexed, third.unchanged, third.pruned) == (1, 1, 1)
    assert [r.name for r in ri.list_runs(db_url, tag="final").runs] == ["a"]
    assert ri.list_runs(db_url, tag="baseline").total == 0
    assert ri.get_runs([a.id, 999999], db_url)[0].status == "running"


def test_bad_paging_is_refused(sqlite_url):
    with pytest.raises(ValueError, match="per_page"):
        ri.list_runs(sqlite_url, per_page=10_000)
    with pytest.raises(ValueError, match="page"):
        ri.list_runs(sqlite_url, page=0)


def test_the_hook_never_creates_a_database(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'absent.db'}"
    monkeypatch.setenv("LLMOPS_DATABASE_URL", url)
    run = write_run(tmp_path / "runs", "x")
    ri.record_run(run, json.loads((run / "manifest.json").read_text()))
    assert not (tmp_path / "absent.db").exists()


@pytest.mark.slow
def test_training_fills_the_index(tmp_path, monkeypatch):
    from llmops.db import upgrade
    from llmops.train import run

    from tests.train.helpers import load, make_records, sft_recipe

    url = f"sqlite:///{tmp_path / 'llmops.db'}"
    upgrade(url)
    monkeypatch.setenv("LLMOPS_DATABASE_URL", url)
    data = tmp_path / "train.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in make_records(16)))
    out = tmp_path / "runs" / "tiny"
    run(load(tmp_path, sft_recipe(data, out, card={"tags": ["smoke"]})))
    [row] = ri.list_runs(url).runs
    assert (row.name, row.status, row.task, row.tags, row.steps_completed) == ("tiny", "completed", "sft", ("smoke",), 4)
    assert row.run_dir == str(out.resolve()) and row.throughput and row.throughput_unit == "tokens_per_s"
    assert ri.scan_runs([tmp_path / "runs"], url).unchanged == 1  # the hook saw the final manifest


def test_cli_scan_and_list_read_the_same_index(sqlite_url, tmp_path, capsys):
    from llmops.cli.main import main

    root = tmp_path / "runs"
    write_run(root, "a", tags=["docs"])
    write_run(root, "b", task="dpo", started="2026-11-02T10:00:00+00:00")
    assert main(["runs", "scan", str(root), "--db", sqlite_url]) == 0
    assert "2 indexed" in capsys.readouterr().out
    assert main(["runs", "list", "--tag", "docs", "--json", "--db", sqlite_url]) == 0
    [line] = capsys.readouterr().out.splitlines()
    assert json.loads(line)["name"] == "a"
    assert main(["runs", "list", "--per-page", "0", "--db", sqlite_url]) == 2  # a clear error, not a traceback


def test_the_migration_matches_the_tables(db_url):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    import llmops.train.tables  # noqa: F401 - registers the tables on Base
    from llmops.db import get_engine, upgrade
    from llmops.db.base import Base

    upgrade(db_url)
    with get_engine(db_url).connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
    assert [d for d in diff if "runs_index" in repr(d)] == []

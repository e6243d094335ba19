"""The runs index: fill it from run folders (the training engine and `scan_runs`), list and filter it.

The training engine calls `record_run` when a run starts and ends (never creating or
migrating a database: it only writes where the `runs` schema already exists, and a failure
to index never fails training). `scan_runs` walks folders for ``manifest.json`` and upserts
what changed since the last scan (by the manifest's mtime), so rescans are cheap and
idempotent; rows of folders that disappeared are pruned. `list_runs` filters by recipe,
task, status and tag and pages in SQL. The UI and `llmops` commands read these functions.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, fields
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session

from llmops.db import session_factory
from llmops.db.schema import ensure_schema
from llmops.settings import database_url
from llmops.train.tables import RUNS_HEAD, RunIndexRow, RunTagRow, utcnow

log = logging.getLogger(__name__)
MANIFEST = "manifest.json"
MAX_DEPTH = 4  # runs/<study>/<trial>/...: deep enough for quickstart, loop and tuning layouts
MAX_PER_PAGE = 200


@dataclass(frozen=True)
class RunSummary:
    """One indexed run, as listed."""

    id: int
    run_dir: str
    run_id: str
    name: str
    recipe: str
    task: str
    status: str
    tags: tuple[str, ...]
    base_model: str | None
    registered: str | None
    started_at: datetime | None
    finished_at: datetime | None
    steps_completed: int
    max_steps: int | None
    train_loss: float | None
    eval_loss: float | None
    throughput: float | None
    throughput_unit: str | None
    wall_time_s: float | None


@dataclass(frozen=True)
class RunPage:
    runs: list[RunSummary]
    total: int
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


@dataclass(frozen=True)
class ScanResult:
    indexed: int  # new or changed since the last scan
    unchanged: int
    pruned: int  # rows whose folder is gone
    skipped: list[str]  # folders whose manifest could not be read (path: reason)


def _iso(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(value)) if value else None
    except ValueError:
        return None


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def fields_from_manifest(run_dir: Path, m: dict[str, Any]) -> dict[str, Any]:
    """The index columns of one manifest (missing keys become None: old runs index too)."""
    recipe = m.get("recipe") if isinstance(m.get("recipe"), dict) else {}
    task = str(m.get("recipe_name") or recipe.get("recipe") or "unknown")
    source = m.get("recipe_source")
    final = m.get("final_metrics") if isinstance(m.get("final_metrics"), dict) else {}
    unit = next((k for k in m if k.endswith("_per_s") and _num(m[k]) is not None), None)
    card = recipe.get("card") if isinstance(recipe.get("card"), dict) else {}
    tags = sorted({str(t)[:128] for t in [*(card.get("tags") or []), *(m.get("tags") or [])] if str(t).strip()})
    return {
        "run_dir": str(run_dir),
        "run_id": str(m.get("run_id") or run_dir.name)[:64],
        "name": run_dir.name[:256],
        "recipe": (Path(str(source)).stem if source else task)[:256],
        "task": task[:32],
        "status": str(m.get("status") or "unknown")[:32],
        "tags": ",".join(tags),
        "base_model": (str(m["base_model_ref"])[:512] if m.get("base_model_ref") else None),
        "registered": (str(m["registered"])[:256] if m.get("registered") else None),
        "started_at": _iso(m.get("started_at")),
        "finished_at": _iso(m.get("finished_at")),
        "steps_completed": int(m.get("steps_completed") or 0),
        "max_steps": int(m["max_steps"]) if isinstance(m.get("max_steps"), int) else None,
        "train_loss": _num(final.get("train_loss")),
        "eval_loss": _num(final.get("eval_loss")),
        "throughput": _num(m.get(unit)) if unit else None,
        "throughput_unit": unit,
        "wall_time_s": _num(m.get("wall_time_s")),
    }


def _upsert(s: Session, values: dict[str, Any], mtime: float) -> None:
    row = s.scalar(select(RunIndexRow).where(RunIndexRow.run_dir == values["run_dir"]))
    if row is None:
        row = RunIndexRow(**values, manifest_mtime=mtime, indexed_at=utcnow())
        s.add(row)
        try:
            with s.begin_nested():
                s.flush()
        except IntegrityError:  # indexed concurrently (the engine's hook and a scan): update it
            row = s.scalar(select(RunIndexRow).where(RunIndexRow.run_dir == values["run_dir"]))
            if row is None:
                raise
    for k, v in values.items():
        setattr(row, k, v)
    row.manifest_mtime, row.indexed_at = mtime, utcnow()
    s.flush()
    s.execute(delete(RunTagRow).where(RunTagRow.run_pk == row.id))
    for tag in filter(None, values["tags"].split(",")):
        s.add(RunTagRow(run_pk=row.id, tag=tag))


def _read(run_dir: Path) -> tuple[dict[str, Any], float]:
    path = run_dir / MANIFEST
    mtime = path.stat().st_mtime
    manifest = json.loads(path.read_text())
    if not isinstance(manifest, dict):
        raise ValueError("manifest.json is not an object")
    return manifest, mtime


def index_run(run_dir: str | Path, db_url: str | None = None, manifest: dict[str, Any] | None = None) -> None:
    """Upsert one run directory (creating the schema if needed)."""
    url = database_url(db_url)
    ensure_schema(url, RUNS_HEAD)
    run_dir = Path(run_dir).resolve()
    if manifest is None:
        manifest, mtime = _read(run_dir)
    else:
        mtime = (run_dir / MANIFEST).stat().st_mtime if (run_dir / MANIFEST).exists() else 0.0
    with session_factory(url)() as s, s.begin():
        _upsert(s, fields_from_manifest(run_dir, manifest), mtime)


def record_run(run_dir: Path, manifest: dict[str, Any]) -> None:
    """The training engine's hook: index this run in the default database if it has the runs schema.

    Never creates a database or migrates one, and never raises: the index is a cache that
    `scan_runs` refills, and training must not fail because a database is unreachable.
    """
    url = database_url(None)
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
        return
    try:
        with session_factory(url)() as s, s.begin():
            if RUNS_HEAD not in s.connection().exec_driver_sql("SELECT version_num FROM alembic_version").scalars():
                return
            mtime = (run_dir / MANIFEST).stat().st_mtime if (run_dir / MANIFEST).exists() else 0.0
            _upsert(s, fields_from_manifest(run_dir.resolve(), manifest), mtime)
    except (SQLAlchemyError, OSError) as exc:
        log.debug("runs index not updated for %s: %s", run_dir, exc)


def find_run_dirs(roots: Iterable[str | Path], max_depth: int = MAX_DEPTH) -> Iterator[Path]:
    """Folders holding a ``manifest.json`` under `roots` (a run folder's insides are not searched)."""
    stack = [(Path(r).resolve(), 0) for r in roots]
    while stack:
        folder, depth = stack.pop()
        if (folder / MANIFEST).is_file():
            yield folder
            continue
        if depth >= max_depth:
            continue
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name, reverse=True)
        except OSError:
            continue
        stack.extend((Path(e.path), depth + 1) for e in entries
                     if e.is_dir(follow_symlinks=False) and not e.name.startswith("."))


def scan_runs(roots: Iterable[str | Path], db_url: str | None = None, *, prune: bool = True) -> ScanResult:
    """Index every run folder under `roots` whose manifest changed; prune rows of vanished folders."""
    url = database_url(db_url)
    ensure_schema(url, RUNS_HEAD)
    roots = [Path(r).resolve() for r in roots]
    found = list(find_run_dirs(roots))
    indexed = unchanged = pruned = 0
    skipped: list[str] = []
    with session_factory(url)() as s, s.begin():
        known = dict(s.execute(select(RunIndexRow.run_dir, RunIndexRow.manifest_mtime)).all())
        for run_dir in found:
            try:
                mtime = (run_dir / MANIFEST).stat().st_mtime
                if known.get(str(run_dir)) == mtime:
                    unchanged += 1
                    continue
                manifest, mtime = _read(run_dir)
            except (OSError, ValueError) as exc:
                skipped.append(f"{run_dir}: {exc}")
                continue
            _upsert(s, fields_from_manifest(run_dir, manifest), mtime)
            indexed += 1
        if prune:
            present = {str(d) for d in found}
            gone = [d for d in known if d not in present and any(Path(d).is_relative_to(r) for r in roots)
                    and not (Path(d) / MANIFEST).is_file()]
            for chunk in range(0, len(gone), 500):
                pruned += s.execute(delete(RunIndexRow).where(RunIndexRow.run_dir.in_(gone[chunk:chunk + 500]))).rowcount
    return ScanResult(indexed, unchanged, pruned, skipped)


def _summary(row: RunIndexRow) -> RunSummary:
    values = {f.name: getattr(row, f.name) for f in fields(RunSummary)}
    values["tags"] = tuple(filter(None, row.tags.split(",")))
    return RunSummary(**values)


def list_runs(db_url: str | None = None, *, recipe: str | None = None, task: str | None = None,
              status: str | None = None, tag: str | None = None, q: str | None = None,
              page: int = 1, per_page: int = 50) -> RunPage:
    """One page of runs, newest first, filtered in SQL (`q`: a substring of the folder name or run id)."""
    if page < 1 or not 1 <= per_page <= MAX_PER_PAGE:
        raise ValueError(f"page must be >= 1 and per_page within 1..{MAX_PER_PAGE}")
    url = database_url(db_url)
    ensure_schema(url, RUNS_HEAD)
    where = []
    if recipe:
        where.append(RunIndexRow.recipe == recipe)
    if task:
        where.append(RunIndexRow.task == task)
    if status:
        where.append(RunIndexRow.status == status)
    if tag:
        where.append(RunIndexRow.id.in_(select(RunTagRow.run_pk).where(RunTagRow.tag == tag)))
    if q:
        pattern = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        where.append(RunIndexRow.name.like(pattern, escape="\\") | RunIndexRow.run_id.like(pattern, escape="\\"))
    with session_factory(url)() as s:
        total = s.scalar(select(func.count()).select_from(RunIndexRow).where(*where)) or 0
        rows = s.scalars(select(RunIndexRow).where(*where)
                         .order_by(RunIndexRow.started_at.desc(), RunIndexRow.id.desc())
                         .limit(per_page).offset((page - 1) * per_page)).all()
        return RunPage([_summary(r) for r in rows], total, page, per_page)


def get_runs(ids: Iterable[int], db_url: str | None = None) -> list[RunSummary]:
    """Indexed runs by id, in the order asked (unknown ids are left out)."""
    ids = list(ids)
    url = database_url(db_url)
    ensure_schema(url, RUNS_HEAD)
    with session_factory(url)() as s:
        rows = {r.id: r for r in s.scalars(select(RunIndexRow).where(RunIndexRow.id.in_(ids)))}
    return [_summary(rows[i]) for i in ids if i in rows]


def runs_by_dir(dirs: Iterable[str | Path], db_url: str | None = None) -> dict[str, RunSummary]:
    """Indexed runs of these folders, by resolved folder path (unindexed folders are left out)."""
    wanted = [str(Path(d).resolve()) for d in dirs]
    url = database_url(db_url)
    ensure_schema(url, RUNS_HEAD)
    out: dict[str, RunSummary] = {}
    with session_factory(url)() as s:
        for chunk in range(0, len(wanted), 500):
            for row in s.scalars(select(RunIndexRow).where(RunIndexRow.run_dir.in_(wanted[chunk:chunk + 500]))):
                out[row.run_dir] = _summary(row)
    return out


def facets(db_url: str | None = None) -> dict[str, list[str]]:
    """Distinct recipes, tasks, statuses and tags (the filter choices)."""
    url = database_url(db_url)
    ensure_schema(url, RUNS_HEAD)
    with session_factory(url)() as s:
        col = {"recipe": RunIndexRow.recipe, "task": RunIndexRow.task, "status": RunIndexRow.status}
        out = {k: sorted(s.scalars(select(c).distinct()).all()) for k, c in col.items()}
        out["tag"] = sorted(s.scalars(select(RunTagRow.tag).distinct()).all())
    return out

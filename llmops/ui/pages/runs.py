"""Runs: the indexed list (filters, server-side pages), one run, a compare view of 2–5 runs.

Data comes from `llmops.train.runs_index` (the list), the run folder through
`llmops.train.manifest.read_manifest`, `llmops.monitor.training.read_metrics/summarize`
and `llmops.train.checkpoints.complete_checkpoints` — the functions `llmops train` and
`llmops monitor plot` use. Admins can rescan the runs folders (`POST /runs/refresh`).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import yaml
from fastapi import APIRouter, Depends, FastAPI, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import HTMLResponse, RedirectResponse, Response

from llmops.errors import UserError
from llmops.monitor.training import read_metrics, summarize, throughput_key
from llmops.train import runs_index
from llmops.train.checkpoints import complete_checkpoints
from llmops.train.manifest import read_manifest
from llmops.ui.guard import BadRequest, NotFound, Viewer, guard
from llmops.ui.policies import UiAction
from llmops.ui.render import render
from llmops.ui.svg import line_chart

log = logging.getLogger(__name__)
router = APIRouter()
NAV = ("Runs", "/runs")
LOG_TAIL_BYTES = 8192
MAX_COMPARE = 5


def on_startup(app: FastAPI) -> None:
    """Index the --runs-dir folders once when the server starts (cheap when nothing changed)."""
    settings = app.state.settings
    if settings.scan_on_start and settings.runs_dirs:
        result = runs_index.scan_runs(settings.runs_dirs, settings.db_url)
        log.info("runs index: %d indexed, %d unchanged, %d pruned", result.indexed, result.unchanged, result.pruned)


@router.get("/runs", response_class=HTMLResponse)
def runs_list(request: Request, viewer: Viewer = Depends(guard(UiAction.VIEW)),
              recipe: str | None = None, task: str | None = None, status: str | None = None,
              tag: str | None = None, q: str | None = Query(None, max_length=200),
              page: int = Query(1, ge=1, le=1_000_000), per_page: int = Query(50, ge=1, le=runs_index.MAX_PER_PAGE),
              scanned: str | None = None) -> HTMLResponse:
    db = request.app.state.settings.db_url
    result = runs_index.list_runs(db, recipe=recipe or None, task=task or None, status=status or None,
                                  tag=tag or None, q=q or None, page=page, per_page=per_page)
    filters = {"recipe": recipe or "", "task": task or "", "status": status or "", "tag": tag or "", "q": q or ""}
    return render(request, "runs/list.html", viewer, result=result, facets=runs_index.facets(db), filters=filters,
                  scanned=scanned, runs_dirs=request.app.state.settings.runs_dirs)


@router.post("/runs/refresh")
async def runs_refresh(request: Request, viewer: Viewer = Depends(guard(UiAction.RUNS_REFRESH))) -> Response:
    settings = request.app.state.settings
    if not settings.runs_dirs:
        raise BadRequest("this server was started without --runs-dir: nothing to scan")
    result = await run_in_threadpool(runs_index.scan_runs, settings.runs_dirs, settings.db_url)
    note = f"{result.indexed} indexed, {result.unchanged} unchanged, {result.pruned} pruned, {len(result.skipped)} unreadable"
    return RedirectResponse(f"/runs?scanned={note.replace(' ', '+')}", status_code=303)


def _one(request: Request, run_pk: int) -> runs_index.RunSummary:
    found = runs_index.get_runs([run_pk], request.app.state.settings.db_url)
    if not found:
        raise NotFound(f"no run with id {run_pk} in the index (rescan the runs folder?)")
    return found[0]


def _metrics(run_dir: Path) -> tuple[list[dict[str, Any]], dict[str, Any] | None, str | None]:
    """(records, summary, problem): a run without readable metrics still has a page."""
    try:
        records = read_metrics(run_dir)
        return records, summarize(records), None
    except UserError as exc:
        return [], None, str(exc)


def _series(records: list[dict[str, Any]], key: str, kind: str) -> list[tuple[float, float]]:
    return [(float(r["step"]), float(r[key])) for r in records
            if r.get("kind", "train") == kind and isinstance(r.get(key), (int, float)) and not isinstance(r.get(key), bool)]


def _log_tail(run_dir: Path) -> list[tuple[str, str]]:
    """The last bytes of each log file at the top of the run folder."""
    out = []
    for path in sorted([*run_dir.glob("*.log"), *run_dir.glob("log.txt"), *run_dir.glob("*.stderr")])[:5]:
        with path.open("rb") as fh:
            fh.seek(max(0, path.stat().st_size - LOG_TAIL_BYTES))
            out.append((path.name, fh.read().decode("utf-8", errors="replace")))
    return out


@router.get("/runs/compare", response_class=HTMLResponse)
def runs_compare(request: Request, viewer: Viewer = Depends(guard(UiAction.VIEW)),
                 run: list[int] = Query(default=[]), all_keys: bool = False) -> HTMLResponse:
    ids = list(dict.fromkeys(run))
    if not 2 <= len(ids) <= MAX_COMPARE:
        raise BadRequest(f"pick 2 to {MAX_COMPARE} runs to compare (got {len(ids)})")
    runs = runs_index.get_runs(ids, request.app.state.settings.db_url)
    if len(runs) != len(ids):
        missing = sorted(set(ids) - {r.id for r in runs})
        raise NotFound(f"no run with id {', '.join(map(str, missing))} in the index")
    loaded = []
    for r in runs:
        records, summary, problem = _metrics(Path(r.run_dir))
        manifest = read_manifest(Path(r.run_dir)) or {}
        loaded.append({"run": r, "records": records, "summary": summary, "problem": problem,
                       "recipe": manifest.get("recipe") if isinstance(manifest.get("recipe"), dict) else {}})
    labels = [f"#{x['run'].id} {x['run'].name}" for x in loaded]
    tp = [throughput_key(x["records"]) for x in loaded]
    charts = [
        line_chart([(lab, _series(x["records"], "loss", "train")) for lab, x in zip(labels, loaded)],
                   title="training loss", ylabel="loss"),
        line_chart([(lab, _series(x["records"], "eval_loss", "eval")) for lab, x in zip(labels, loaded)],
                   title="validation loss", ylabel="eval loss"),
        line_chart([(lab, _series(x["records"], k, "train") if k else []) for lab, x, k in zip(labels, loaded, tp)],
                   title="throughput", ylabel=" / ".join(sorted({k for k in tp if k})) or "per s"),
    ]
    diff = recipe_diff([x["recipe"] for x in loaded], all_keys=all_keys)
    return render(request, "runs/compare.html", viewer, loaded=loaded, labels=labels, charts=charts, diff=diff,
                  all_keys=all_keys, ids=ids)


def _flatten(d: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(d, dict):
        out: dict[str, Any] = {}
        for k, v in d.items():
            out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {prefix: d}


def recipe_diff(recipes: list[dict[str, Any]], *, all_keys: bool = False) -> list[tuple[str, list[Any], bool]]:
    """(dotted key, value per recipe, differs?) for keys whose values differ (or all keys)."""
    flat = [_flatten(r) for r in recipes]
    keys = sorted(set().union(*flat))
    missing = object()
    rows = []
    for k in keys:
        values = [f.get(k, missing) for f in flat]
        differs = any(repr(v) != repr(values[0]) for v in values)
        if differs or all_keys:
            rows.append((k, ["(absent)" if v is missing else v for v in values], differs))
    return rows


@router.get("/runs/{run_pk}", response_class=HTMLResponse)
def run_page(request: Request, run_pk: int, viewer: Viewer = Depends(guard(UiAction.VIEW))) -> HTMLResponse:
    r = _one(request, run_pk)
    run_dir = Path(r.run_dir)
    manifest = read_manifest(run_dir) if run_dir.is_dir() else None
    records, summary, problem = _metrics(run_dir) if run_dir.is_dir() else ([], None, "the run folder is gone")
    tp = throughput_key(records)
    charts = [
        line_chart([("train loss", _series(records, "loss", "train")),
                    ("validation loss", _series(records, "eval_loss", "eval"))],
                   title="loss", ylabel="loss", dashed=["validation loss"]),
        line_chart([(tp or "throughput", _series(records, tp, "train") if tp else [])], title="throughput",
                   ylabel=tp or ""),
        line_chart([("lr", _series(records, "lr", "train"))], title="learning rate", ylabel="lr"),
    ]
    recipe = manifest.get("recipe") if manifest else None
    details = {k: v for k, v in (manifest or {}).items() if k not in ("recipe", "attempts", "versions", "host", "threads")}
    return render(
        request, "runs/run.html", viewer, run=r, manifest=manifest, details=details, summary=summary, problem=problem,
        charts=charts, recipe_yaml=yaml.safe_dump(recipe, sort_keys=False) if recipe else None,
        checkpoints=complete_checkpoints(run_dir) if run_dir.is_dir() else [],
        final_dir=(run_dir / "final") if (run_dir / "final").is_dir() else None,
        logs=_log_tail(run_dir) if run_dir.is_dir() else [], recent=records[-20:],
    )

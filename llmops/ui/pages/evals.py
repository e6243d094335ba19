"""Evaluations: the eval and bench outputs under the evaluation roots, one run's results, a bench,
and a side-by-side view of two paired runs with per-sample drill-down.

Reads through `llmops.eval.api` (`load_results`, `paired_compare`: what `llmops eval`,
`llmops bench` and the registry's gates use) and `llmops.eval.browse` (finding outputs,
filtering and paging samples). Outputs are addressed as ``<root index>/<path under it>``;
paths escaping a root are refused.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import HTMLResponse

from llmops.errors import UserError
from llmops.eval import browse
from llmops.eval.api import load_results, paired_compare
from llmops.eval.report import speed_table
from llmops.ui.guard import BadRequest, NotFound, Viewer, guard
from llmops.ui.policies import UiAction
from llmops.ui.render import render

router = APIRouter()
NAV = ("Evaluations", "/evals")
PER_PAGE = 50


def _roots(request: Request) -> tuple[Path, ...]:
    return request.app.state.settings.eval_roots


def ref_of(roots: tuple[Path, ...], path: str | Path) -> str | None:
    """``<root index>/<relative path>`` of a folder under one of the roots (None when outside all)."""
    path = Path(path).resolve()
    for i, root in enumerate(roots):
        if path.is_relative_to(root):
            return f"{i}/{path.relative_to(root).as_posix()}"
    return None


def _folder(request: Request, ref: str, marker: str) -> Path:
    index, _, rel = ref.partition("/")
    if not index.isdigit():
        raise BadRequest(f"evaluation reference {ref!r}: expected <root index>/<path>")
    try:
        path = browse.resolve_under(_roots(request), int(index), rel)
    except UserError as exc:
        raise NotFound(str(exc)) from exc
    if not (path / marker).is_file():
        raise NotFound(f"{ref}: no {marker} there")
    return path


@lru_cache(maxsize=64)
def _results(path: str, mtime: float) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    return load_results(path)


def _load(path: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    try:
        return _results(str(path), (path / browse.RESULTS).stat().st_mtime)
    except (UserError, ValueError, KeyError) as exc:
        raise BadRequest(f"{path.name}: unreadable evaluation output ({exc})") from exc


@lru_cache(maxsize=64)
def _compare(a: str, b: str, mtimes: tuple[float, float]) -> dict[str, dict[str, Any]]:
    return paired_compare(a, b)


def _summary(out: browse.EvalOutput) -> dict[str, Any]:
    """What the list shows of one output (an unreadable one says so instead of failing the page)."""
    try:
        if out.kind == "bench":
            b = browse.load_bench(out.path)
            return {"models": [r["label"] for r in next(iter(b["suites"].values()), [])],
                    "suites": list(b["suites"]), "speed": bool(b.get("speed"))}
        r, _ = _load(out.path)
        first = next(iter(r["metrics"].items()), None)
        return {"suite": r.get("suite"), "model": r.get("model"), "n": r.get("n_samples"), "first": first,
                "wall": (r.get("timings") or {}).get("wall_seconds")}
    except (UserError, ValueError, KeyError, StopIteration, BadRequest) as exc:
        return {"error": str(getattr(exc, "message", exc))}


@router.get("/evals", response_class=HTMLResponse)
def evals_list(request: Request, viewer: Viewer = Depends(guard(UiAction.VIEW)), kind: str | None = None,
               q: str | None = Query(None, max_length=200), page: int = Query(1, ge=1, le=100_000)) -> HTMLResponse:
    if kind not in (None, "", "eval", "bench"):
        raise BadRequest("kind must be eval or bench")
    roots = _roots(request)
    outputs = [o for o in browse.find_outputs(roots) if (not kind or o.kind == kind) and (not q or q in o.rel)]
    total = len(outputs)
    shown = outputs[(page - 1) * PER_PAGE: page * PER_PAGE]
    rows = [{"out": o, "ref": f"{roots.index(o.root)}/{o.rel}", **_summary(o)} for o in shown]
    result = {"page": page, "pages": max(1, -(-total // PER_PAGE)), "total": total}
    return render(request, "evals/list.html", viewer, rows=rows, result=result, roots=roots, kind=kind or "", q=q or "")


@router.get("/evals/run/{ref:path}", response_class=HTMLResponse)
def eval_run(request: Request, ref: str, viewer: Viewer = Depends(guard(UiAction.VIEW)),
             q: str | None = Query(None, max_length=200), sort: str | None = Query(None, max_length=64),
             page: int = Query(1, ge=1, le=1_000_000)) -> HTMLResponse:
    path = _folder(request, ref, browse.RESULTS)
    results, samples = _load(path)
    metrics = list(results.get("metrics", {}))
    if sort and sort.lstrip("-") not in metrics:
        raise BadRequest(f"sort must be one of the metrics ({', '.join(metrics)}), optionally prefixed with -")
    rows, matching = browse.sample_page(samples, q=q, sort=sort, page=page, per_page=PER_PAGE // 2)
    result = {"page": page, "pages": max(1, -(-matching // (PER_PAGE // 2))), "total": matching}
    return render(request, "evals/run.html", viewer, ref=ref, path=path, results=results, rows=rows, result=result,
                  metrics=metrics, q=q or "", sort=sort or "")


@router.get("/evals/bench/{ref:path}", response_class=HTMLResponse)
def bench_page(request: Request, ref: str, viewer: Viewer = Depends(guard(UiAction.VIEW))) -> HTMLResponse:
    path = _folder(request, ref, browse.BENCH)
    try:
        bench = browse.load_bench(path)
    except (UserError, ValueError) as exc:
        raise BadRequest(str(exc)) from exc
    roots = _roots(request)
    suites = []
    for name, rows in bench.get("suites", {}).items():
        metrics = list(rows[0]["results"]["metrics"]) if rows else []
        refs = [ref_of(roots, r["dir"]) for r in rows]
        suites.append({"name": name, "rows": rows, "metrics": metrics, "refs": refs})
    speed_header, speed_cells = speed_table(bench["speed"]) if bench.get("speed") else ([], [])
    return render(request, "evals/bench.html", viewer, ref=ref, path=path, bench=bench, suites=suites,
                  speed_header=speed_header, speed_cells=speed_cells)


@router.get("/evals/compare", response_class=HTMLResponse)
def eval_compare(request: Request, a: str, b: str, viewer: Viewer = Depends(guard(UiAction.VIEW)),
                 q: str | None = Query(None, max_length=200), metric: str | None = Query(None, max_length=64),
                 only: str | None = None, sort: str | None = None,
                 page: int = Query(1, ge=1, le=1_000_000)) -> HTMLResponse:
    if only not in (None, "", "differ", "better", "worse") or sort not in (None, "", "delta", "-delta"):
        raise BadRequest("only must be differ, better or worse; sort must be delta or -delta")
    pa, pb = _folder(request, a, browse.RESULTS), _folder(request, b, browse.RESULTS)
    ra, sa = _load(pa)
    rb, sb = _load(pb)
    metrics = [m for m in ra.get("metrics", {}) if m in rb.get("metrics", {})]
    metric = metric or (metrics[0] if metrics else None)
    if metric is not None and metric not in metrics:
        raise BadRequest(f"metric must be one of {', '.join(metrics)}")
    try:
        comparison = _compare(str(pa), str(pb), ((pa / browse.RESULTS).stat().st_mtime,
                                                  (pb / browse.RESULTS).stat().st_mtime))
    except UserError as exc:  # not paired: different suites or samples
        raise BadRequest(str(exc)) from exc
    rows, matching = browse.paired_sample_page(sa, sb, q=q, metric=metric, only=only or None, sort=sort or None,
                                               page=page, per_page=PER_PAGE // 2)
    result = {"page": page, "pages": max(1, -(-matching // (PER_PAGE // 2))), "total": matching}
    return render(request, "evals/compare.html", viewer, a=a, b=b, ra=ra, rb=rb, comparison=comparison, rows=rows,
                  result=result, metrics=metrics, metric=metric, q=q or "", only=only or "", sort=sort or "")

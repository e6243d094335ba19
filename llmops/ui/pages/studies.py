"""Tuning studies (part of the runs area): each study's trials and its Pareto front.

Reads `llmops.tune.study.list_studies`, `load_study` and `summary` (what `llmops tune`
prints); trials link to their run pages through the runs index.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.responses import HTMLResponse

from llmops.errors import UserError
from llmops.train.runs_index import runs_by_dir
from llmops.ui.guard import NotFound, Viewer, guard
from llmops.ui.policies import UiAction
from llmops.ui.render import render
from llmops.ui.svg import scatter

router = APIRouter()
NAV = None  # reached from the runs list


def _tune():
    try:
        from llmops.tune import study
    except ImportError as exc:  # optuna is the `tune` extra
        raise NotFound(f"tuning is not installed here ({exc.name}): pip install 'llmops[tune]'") from exc
    return study


@router.get("/runs/studies", response_class=HTMLResponse)
def studies(request: Request, viewer: Viewer = Depends(guard(UiAction.VIEW))) -> HTMLResponse:
    try:
        found = _tune().list_studies(request.app.state.settings.db_url)
    except NotFound as exc:
        return render(request, "runs/studies.html", viewer, studies=[], note=exc.message)
    return render(request, "runs/studies.html", viewer, studies=found, note=None)


@router.get("/runs/studies/{name}", response_class=HTMLResponse)
def study_page(request: Request, name: str, viewer: Viewer = Depends(guard(UiAction.VIEW))) -> HTMLResponse:
    tune = _tune()
    db = request.app.state.settings.db_url
    try:
        study = tune.load_study(db, name)
    except UserError as exc:
        raise NotFound(str(exc)) from exc
    summary = tune.summary(study)
    names = summary["objectives"] or ["value"]
    front = {p["trial"] for p in summary["pareto_front"]}
    trials = study.get_trials(deepcopy=False)
    runs = runs_by_dir([t.user_attrs["run_dir"] for t in trials if t.user_attrs.get("run_dir")], db)
    rows: list[dict[str, Any]] = []
    for t in trials:
        run_dir = t.user_attrs.get("run_dir")
        rows.append({"number": t.number, "state": t.state.name, "values": list(t.values or []), "params": t.params,
                     "front": t.number in front, "run_dir": run_dir,
                     "run": runs.get(str(run_dir)) if run_dir else None})
    done = [r for r in rows if r["values"]]
    if len(names) >= 2:
        chart = scatter([(r["values"][0], r["values"][1], f"trial {r['number']}", r["front"]) for r in done],
                        title=f"Pareto front: {names[0]} vs {names[1]}", xlabel=names[0], ylabel=names[1])
    else:
        chart = scatter([(float(r["number"]), r["values"][0], f"trial {r['number']}", r["front"]) for r in done],
                        title=f"{names[0]} per trial (best highlighted)", xlabel="trial", ylabel=names[0])
    params = sorted({k for r in rows for k in r["params"]})
    return render(request, "runs/study.html", viewer, study_name=name, summary=summary, names=names, rows=rows,
                  params=params, chart=chart, directions=[d.name.lower() for d in study.directions])

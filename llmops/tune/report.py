"""The study's HTML report: Pareto front, optimisation history, parameter importances, trial table.

Self-contained (PNG plots inline, no scripts): Optuna's matplotlib visualisations, and
PED-ANOVA importances (no scikit-learn needed).
"""

from __future__ import annotations

import base64
import html
import io
import warnings
from pathlib import Path
from typing import Any


def _png(ax_or_fig) -> str:
    fig = ax_or_fig.figure if hasattr(ax_or_fig, "figure") and ax_or_fig.figure is not None else ax_or_fig
    if hasattr(fig, "get_figure") and fig.get_figure() is not None:
        fig = fig.get_figure()
    buf = io.BytesIO()
    fig.set_size_inches(6.5, 4.0)
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return f"<img src='data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}'>"


def _plots(study, names: list[str]) -> list[tuple[str, str]]:
    import matplotlib

    matplotlib.use("Agg")
    import optuna.visualization.matplotlib as vm
    from optuna.importance import PedAnovaImportanceEvaluator
    from optuna.trial import TrialState

    done = [t for t in study.get_trials(deepcopy=False) if t.state == TrialState.COMPLETE]
    out: list[tuple[str, str]] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Optuna marks its matplotlib plots experimental
        if len(names) > 1 and done:
            out.append(("Pareto front", _png(vm.plot_pareto_front(study, target_names=names[:3]))))
        for i, name in enumerate(names):
            if done:
                target = (lambda t, i=i: t.values[i]) if len(names) > 1 else None
                ax = vm.plot_optimization_history(study, target=target, target_name=name)
                out.append((f"History: {name}", _png(ax)))
            if len(done) >= 3 and study.user_attrs.get("space", {}).get("params"):
                try:
                    target = (lambda t, i=i: t.values[i]) if len(names) > 1 else None
                    ax = vm.plot_param_importances(study, evaluator=PedAnovaImportanceEvaluator(), target=target,
                                                   target_name=name)
                    out.append((f"Parameter importance for {name} (PED-ANOVA)", _png(ax)))
                except (RuntimeError, ValueError) as exc:
                    out.append((f"Parameter importance for {name}", f"<p>not computable yet: {html.escape(str(exc))}</p>"))
        if any(t.intermediate_values for t in study.get_trials(deepcopy=False)) and len(names) == 1:
            out.append(("Intermediate validation loss", _png(vm.plot_intermediate_values(study))))
    return out


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def render(study) -> str:
    from llmops.tune.study import summary

    names = study.user_attrs.get("objectives", [])
    s = summary(study)
    front = {p["trial"] for p in s["pareto_front"]}
    params = sorted({k for t in study.get_trials(deepcopy=False) for k in t.params})
    head = ["trial", "state", *names, *params, "wall s", "run dir", "Pareto"]
    rows = []
    for t in study.get_trials(deepcopy=False):
        measured = t.user_attrs.get("measured", {})
        vals = [_fmt(v) for v in t.values] if t.values else [""] * len(names)
        rows.append([str(t.number), t.state.name, *vals, *(_fmt(t.params.get(p, "")) for p in params),
                     _fmt(measured.get("wall_time_s", "")), html.escape(str(t.user_attrs.get("run_dir", ""))),
                     "★" if t.number in front else ""])
    table = "<table><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in head) + "</tr>" + "".join(
        "<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows) + "</table>"
    plots = "".join(f"<h2>{html.escape(title)}</h2>{img}" for title, img in _plots(study, names))
    space = study.user_attrs.get("space", {})
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>llmops tune: "
        f"{html.escape(study.study_name)}</title><style>body{{font-family:system-ui,sans-serif;margin:2em;"
        "max-width:1200px}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 7px;font-size:13px}"
        "</style></head><body>"
        f"<h1>Study {html.escape(study.study_name)}</h1>"
        f"<p>objectives: {html.escape(', '.join(f'{n} ({d.name.lower()})' for n, d in zip(names, study.directions)))}"
        f" · price per device-hour: {space.get('price_per_device_hour')} · trials: "
        f"{html.escape(', '.join(f'{k} {v}' for k, v in s['trials'].items()))}</p>"
        f"{table}{plots}</body></html>"
    )


def write_report(study, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(study), encoding="utf-8")
    return path

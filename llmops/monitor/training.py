"""Training monitoring: a run's ``metrics.jsonl`` -> PNG plots (loss, lr, throughput) and a summary.

Works on finished and on running runs (a half-written last line is skipped). Several
runs can be overlaid to compare them. Throughput is whatever ``<unit>_per_s`` the task
logs (``tokens_per_s`` for SFT, ``pairs_per_s`` for a preference task).
"""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path
from typing import Any

from llmops.errors import DataError


def read_metrics(run_dir: str | Path) -> list[dict[str, Any]]:
    path = Path(run_dir) / "metrics.jsonl"
    if not path.is_file():
        raise DataError(f"{run_dir}: no metrics.jsonl (is this a run directory?)")
    lines = path.read_text().splitlines()
    records = []
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except ValueError as exc:
            if i == len(lines):  # the trainer may be writing it right now
                break
            raise DataError(f"{path}:{i}: invalid JSON ({exc.msg})") from None
        if not isinstance(rec, dict) or "step" not in rec:
            raise DataError(f"{path}:{i}: expected an object with `step`")
        records.append(rec)
    return records


def _train(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in records if r.get("kind", "train") == "train" and "loss" in r]


def throughput_key(records: list[dict[str, Any]]) -> str | None:
    for r in _train(records):
        for key in r:
            if key.endswith("_per_s"):
                return key
    return None


def summarize(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Numbers a reviewer asks about first: did the loss go down, how fast, anything odd."""
    train = _train(records)
    evals = [r for r in records if r.get("kind") == "eval" and "eval_loss" in r]
    if not train and not evals:
        raise DataError("metrics.jsonl has no train or eval records")
    losses = [r["loss"] for r in train]
    finite = [x for x in losses if isinstance(x, (int, float)) and math.isfinite(x)]
    tp_key = throughput_key(records)
    unit = tp_key[: -len("_per_s")] if tp_key else None
    tps = [r[tp_key] for r in train if tp_key and isinstance(r.get(tp_key), (int, float))]
    summary: dict[str, Any] = {
        "steps": max((r["step"] for r in records), default=0),
        "n_train_records": len(train),
        "first_loss": losses[0] if losses else None,
        "final_loss": losses[-1] if losses else None,
        "min_loss": min(finite) if finite else None,
        "non_finite_losses": len(losses) - len(finite),
        "final_lr": train[-1].get("lr") if train else None,
        "max_grad_norm": max((r["grad_norm"] for r in train if isinstance(r.get("grad_norm"), (int, float))),
                             default=None),
        "peak_mem_mb": max((r["peak_mem_mb"] for r in records if isinstance(r.get("peak_mem_mb"), (int, float))),
                           default=None),
        "unit": unit,
        "units_total": sum(r.get(unit, 0) for r in train) if unit else None,
        "throughput_median": statistics.median(tps) if tps else None,
        "eval_losses": [(r["step"], r["eval_loss"]) for r in evals],
        "best_eval_loss": min((r["eval_loss"] for r in evals), default=None),
    }
    if len(finite) >= 2:
        summary["loss_decreased"] = finite[-1] < finite[0]
    return summary


def _plot(series: list[tuple[str, list[tuple[float, float]]]], ylabel: str, out: Path, log_y: bool = False) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    for label, points in series:
        if points:
            ax.plot(*zip(*points, strict=True), label=label, linewidth=1.4, marker="o" if len(points) < 3 else None)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel(ylabel)
    if log_y:
        ax.set_yscale("log")
    ax.grid(alpha=0.3)
    if len(series) > 1:
        ax.legend()
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)
    return out


def plot_runs(run_dirs: list[str | Path], out_dir: str | Path | None = None) -> dict[str, Any]:
    """Write loss.png, lr.png, throughput.png and summary.json; returns {"plots": [...], "summaries": {...}}."""
    runs = {str(d): read_metrics(d) for d in run_dirs}
    out = Path(out_dir) if out_dir else Path(run_dirs[0]) / "monitor"
    out.mkdir(parents=True, exist_ok=True)
    many = len(runs) > 1

    def label(run: str, what: str) -> str:
        return f"{Path(run).name} {what}" if many else what

    loss, lr, tp = [], [], []
    for run, recs in runs.items():
        train = _train(recs)
        loss.append((label(run, "train loss"), [(r["step"], r["loss"]) for r in train]))
        loss.append((label(run, "validation loss"),
                     [(r["step"], r["eval_loss"]) for r in recs if r.get("kind") == "eval" and "eval_loss" in r]))
        lr.append((label(run, "lr"), [(r["step"], r["lr"]) for r in train if r.get("lr") is not None]))
        key = throughput_key(recs)
        tp.append((label(run, key or "throughput"), [(r["step"], r[key]) for r in train if key and key in r]))
    unit = throughput_key(next(iter(runs.values()))) or "units_per_s"
    plots = [_plot(loss, "loss per supervised unit", out / "loss.png"),
             _plot(lr, "learning rate", out / "lr.png"),
             _plot(tp, unit.replace("_per_s", "/s"), out / "throughput.png")]
    summaries = {run: summarize(recs) for run, recs in runs.items()}
    (out / "summary.json").write_text(json.dumps(summaries, indent=2))
    return {"plots": [str(p) for p in plots], "summaries": summaries, "out_dir": str(out)}

"""The report's figures as base64 PNG data URIs (matplotlib, Agg backend, no files, no CDN)."""

from __future__ import annotations

import base64
import io
import json
import re
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

COLOURS = ["#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3"]


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _metrics(run_dir: str | Path) -> list[dict[str, Any]]:
    path = Path(run_dir) / "metrics.jsonl"
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except ValueError:
            continue  # a torn last line
    return rows


def loss_curves(runs: dict[str, str]) -> str:
    """Training loss per run (one panel each: their losses are on different scales)."""
    fig, axes = plt.subplots(1, len(runs), figsize=(4 * len(runs), 3), squeeze=False)
    for ax, (label, run_dir) in zip(axes[0], runs.items()):
        rows = [r for r in _metrics(run_dir) if r.get("kind", "train") == "train" and "loss" in r]
        ax.plot([r["step"] for r in rows], [r["loss"] for r in rows], marker="o", ms=3, color=COLOURS[0])
        evals = [r for r in _metrics(run_dir) if r.get("kind") == "eval" and "eval_loss" in r]
        if evals:
            ax.plot([r["step"] for r in evals], [r["eval_loss"] for r in evals], "s--", ms=4, color=COLOURS[1],
                    label="validation")
            ax.legend(fontsize=8)
        ax.set_title(label)
        ax.set_xlabel("step")
        ax.set_ylabel("loss")
        ax.grid(alpha=0.3)
    return _png(fig)


def metric_bars(evals: dict[str, dict[str, Any]], metrics: list[str]) -> str:
    """Score per model and metric with its bootstrap interval (0-100 metrics such as BLEU get their own panel)."""
    wide = {m for m in metrics if any(ev["metrics"][m]["ci_high"] > 1.0 or ev["metrics"][m]["score"] > 1.0
                                      for ev in evals.values())}
    groups = [g for g in ([m for m in metrics if m in wide], [m for m in metrics if m not in wide]) if g]
    fig, axes = plt.subplots(1, len(groups), figsize=(4 + 1.6 * len(metrics), 3.2), squeeze=False,
                             gridspec_kw={"width_ratios": [len(g) for g in groups]})
    width = 0.8 / max(len(evals), 1)
    for ax, group in zip(axes[0], groups):
        for i, (label, ev) in enumerate(evals.items()):
            xs = [j + i * width for j in range(len(group))]
            scores = [ev["metrics"][m]["score"] for m in group]
            err = [[max(0.0, s - ev["metrics"][m]["ci_low"]) for s, m in zip(scores, group)],
                   [max(0.0, ev["metrics"][m]["ci_high"] - s) for s, m in zip(scores, group)]]
            ax.bar(xs, scores, width, yerr=err, capsize=3, label=label, color=COLOURS[i % len(COLOURS)])
        ax.set_xticks([j + width * (len(evals) - 1) / 2 for j in range(len(group))], group)
        ax.set_ylabel("score (95% CI)")
        ax.grid(axis="y", alpha=0.3)
    axes[0][-1].legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return _png(fig)


def rating_histogram(histogram: dict[str, int]) -> str:
    fig, ax = plt.subplots(figsize=(4.5, 3))
    keys = sorted(histogram, key=int)
    ax.bar(keys, [histogram[k] for k in keys], color=COLOURS[2])
    ax.set_xlabel("rating (SIMULATED raters)")
    ax.set_ylabel("count")
    ax.grid(axis="y", alpha=0.3)
    return _png(fig)


def drift_chart(report: dict[str, Any]) -> str:
    """Prompt length distribution (reference vs production) and PSI per feature."""
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.2))
    ref, cur = report["reference_token_length"], report["current_token_length"]
    hi = max(max(ref, default=1), max(cur, default=1))
    bins = list(range(0, int(hi) + 10, max(1, int(hi) // 25)))
    ax1.hist(ref, bins=bins, density=True, alpha=0.6, label="training prompts", color=COLOURS[0])
    ax1.hist(cur, bins=bins, density=True, alpha=0.6, label="production prompts", color=COLOURS[1])
    ax1.set_xlabel("prompt length (words)")
    ax1.set_ylabel("density")
    ax1.legend(fontsize=8)
    feats = report["features"]
    names = list(feats)
    ax2.bar(range(len(names)), [feats[n].get("psi", 0.0) for n in names],
            color=[COLOURS[3] if feats[n]["drift"] else COLOURS[2] for n in names])
    ax2.axhline(0.1, ls=":", color="grey", label="PSI warn 0.1")
    ax2.axhline(0.25, ls="--", color="grey", label="PSI alert 0.25")
    ax2.set_ylabel("PSI (red: drift by its calibrated test)")
    ax2.legend(fontsize=8)
    ax2.set_xticks(range(len(names)), names, fontsize=8)
    return _png(fig)


def lineage_svg(name: str, db_url: str) -> str:
    """The registry's own inline-SVG lineage drawing (offline; no Mermaid renderer needed)."""
    from llmops.registry import api
    from llmops.registry.lineage import build_graph, to_html

    page = to_html(build_graph(api.list_versions(name, db_url=db_url)), f"{name} lineage")
    match = re.search(r"<svg.*?</svg>", page, re.S)
    return match.group(0) if match else ""

"""Benchmark reports: a Markdown table and a self-contained HTML page per benchmark.

The HTML embeds its plots as base64 PNGs (matplotlib, Agg backend) and has no external
assets, so it can be attached to a pull request or opened offline.
"""

from __future__ import annotations

import base64
import html
import io
from typing import Any

SPEED_COLUMNS = (
    ("generated_tokens_per_s", "gen tok/s", "{:,.0f}"),
    ("scored_tokens_per_s", "scored tok/s", "{:,.0f}"),
    ("latency_p50_s", "p50 s", "{:.3f}"),
    ("latency_p95_s", "p95 s", "{:.3f}"),
    ("peak_rss_mb", "peak RSS MB", "{:,.0f}"),
    ("peak_gpu_mb", "peak GPU MB", "{:,.0f}"),
)


def _fmt(value: float) -> str:
    return f"{value:.4g}" if abs(value) < 1000 else f"{value:,.0f}"


def summary_lines(results: dict[str, Any]) -> list[str]:
    """Human summary of one results.json (CLI output)."""
    lines = [f"{results['suite']} · {results['model']} · n={results['n_samples']}"
             + (" · cached" if results["timings"].get("cached") else "")]
    for name, m in results["metrics"].items():
        lines.append(f"  {name:<14} {_fmt(m['score']):>10}  95% CI [{_fmt(m['ci_low'])}, {_fmt(m['ci_high'])}]")
    t = results["timings"]
    speed = [f"{label} {fmt.format(t[k])}" for k, label, fmt in SPEED_COLUMNS if t.get(k) is not None]
    if speed:
        lines.append("  " + " · ".join(speed))
    return lines


def _p(p: float) -> str:
    return "p<0.001" if p < 0.001 else f"p={p:.3f}"


def suite_table(suite: str, rows: list[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    """(header, cells) for one suite: quality with CI, delta vs the first row with p, speed."""
    metrics = list(rows[0]["results"]["metrics"])
    speed = [(k, label, fmt) for k, label, fmt in SPEED_COLUMNS if any(r["results"]["timings"].get(k) is not None for r in rows)]
    header = ["checkpoint"]
    for m in metrics:
        header += [m, f"Δ {m} vs first"]
    header += [label for _, label, _ in speed]
    cells = []
    for i, r in enumerate(rows):
        line = [r["label"]]
        for m in metrics:
            info = r["results"]["metrics"][m]
            line.append(f"{_fmt(info['score'])} [{_fmt(info['ci_low'])}, {_fmt(info['ci_high'])}]")
            cmp = (r.get("comparison") or {}).get(m)
            line.append("—" if i == 0 or cmp is None else f"{cmp['delta']:+.4g} ({_p(cmp['p_value'])}, {cmp['test']})")
        t = r["results"]["timings"]
        line += [fmt.format(t[k]) if t.get(k) is not None else "" for k, _, fmt in speed]
        cells.append(line)
    return header, cells


def markdown(bench: dict[str, Any]) -> str:
    out = ["# Checkpoint benchmark", ""]
    for suite, rows in bench["suites"].items():
        header, cells = suite_table(suite, rows)
        out += [f"## {suite}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        out += ["| " + " | ".join(c.replace("|", "\\|") for c in line) + " |" for line in cells]
        out += ["", _legend(), ""]
    return "\n".join(out)


def _legend() -> str:
    return ("Scores with 95% bootstrap intervals. Δ is each checkpoint minus the first with a paired test on the same "
            "samples: McNemar for exact match/accuracy, paired bootstrap or approximate randomisation over "
            "sufficient statistics otherwise.")


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    return base64.b64encode(buf.getvalue()).decode()


def _plots(suite: str, rows: list[dict[str, Any]]) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    images = []
    labels = [r["label"] for r in rows]
    metrics = list(rows[0]["results"]["metrics"])
    fig, axes = plt.subplots(1, len(metrics), figsize=(3.2 * len(metrics), 3.0), squeeze=False)
    for ax, m in zip(axes[0], metrics):
        infos = [r["results"]["metrics"][m] for r in rows]
        scores = [i["score"] for i in infos]
        err = [[s - i["ci_low"] for s, i in zip(scores, infos)], [i["ci_high"] - s for s, i in zip(scores, infos)]]
        ax.bar(range(len(rows)), scores, yerr=err, capsize=4, color="#4c72b0")
        ax.set_xticks(range(len(rows)), labels, rotation=30, ha="right", fontsize=8)
        ax.set_title(m, fontsize=10)
    fig.suptitle(f"{suite}: quality (95% CI)", fontsize=11)
    images.append(_png(fig))
    plt.close(fig)
    key = next((k for k in ("generated_tokens_per_s", "scored_tokens_per_s") if rows[0]["results"]["timings"].get(k)), None)
    if key:
        fig, ax = plt.subplots(figsize=(4.5, 3.0))
        ax.bar(range(len(rows)), [r["results"]["timings"].get(key) or 0 for r in rows], color="#55a868")
        ax.set_xticks(range(len(rows)), labels, rotation=30, ha="right", fontsize=8)
        ax.set_ylabel(key.replace("_", " "))
        ax.set_title(f"{suite}: speed", fontsize=10)
        images.append(_png(fig))
        plt.close(fig)
    return images


def html_page(bench: dict[str, Any]) -> str:
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>llmops benchmark</title><style>",
        "body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px}table{border-collapse:collapse;margin:1em 0}"
        "td,th{border:1px solid #ccc;padding:4px 8px;font-size:13px;text-align:right}td:first-child,th:first-child"
        "{text-align:left}th{background:#f3f3f3}.legend{color:#555;font-size:12px}img{margin:0.5em 1em 0.5em 0}",
        "</style></head><body><h1>Checkpoint benchmark</h1>",
    ]
    for suite, rows in bench["suites"].items():
        header, cells = suite_table(suite, rows)
        parts.append(f"<h2>{html.escape(suite)}</h2><table><tr>")
        parts += [f"<th>{html.escape(h)}</th>" for h in header]
        parts.append("</tr>")
        for line in cells:
            parts.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in line) + "</tr>")
        parts.append(f"</table><p class='legend'>{html.escape(_legend())}</p>")
        parts += [f"<img alt='{html.escape(suite)} plot' src='data:image/png;base64,{img}'>" for img in _plots(suite, rows)]
    parts.append("</body></html>")
    return "".join(parts)

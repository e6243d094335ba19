"""Benchmark reports: a Markdown table and a self-contained HTML page per benchmark.

The HTML embeds its plots as base64 PNGs (matplotlib, Agg backend) and has no external
assets, so it can be attached to a pull request or opened offline.
"""

from __future__ import annotations

import base64
import html
import io
from typing import Any

import numpy as np

SPEED_COLUMNS = (
    ("generated_tokens_per_s", "gen tok/s", "{:,.0f}"),
    ("scored_tokens_per_s", "scored tok/s", "{:,.0f}"),
    ("latency_p50_s", "p50 s", "{:.3f}"),
    ("latency_p95_s", "p95 s", "{:.3f}"),
    ("peak_rss_mb", "peak RSS MB", "{:,.0f}"),
    ("peak_gpu_mb", "peak GPU MB", "{:,.0f}"),
)
# Columns of `llmops bench --footprint` (fresh-process measurements, `llmops.eval.footprint`).
FOOTPRINT_COLUMNS = (
    ("weights_mb", "weights MB", "{:.2f}"),
    ("model_rss_mb", "model RSS MB", "{:,.0f}"),
    ("load_s", "load s", "{:.2f}"),
    ("bs1_tokens_per_s", "bs1 tok/s", "{:,.0f}"),
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


def _delta_cell(cmp: dict[str, Any] | None) -> str:
    if cmp is None:
        return "—"
    if "refused" in cmp:
        return "not comparable (different tokenizers)"
    low, high = cmp.get("delta_ci95") or (float("nan"), float("nan"))
    holm = f", Holm {_p(cmp['p_holm'])}" if "p_holm" in cmp else ""
    return f"{cmp['delta']:+.4g} [{low:+.4g}, {high:+.4g}] {cmp.get('direction', '')} ({_p(cmp['p_value'])}{holm}, {cmp['test']})"


def suite_table(suite: str, rows: list[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    """(header, cells) for one suite: quality with CI, delta vs the first row with its interval,
    raw and Holm-corrected p and direction, and the evaluation's own timings ("cached" when
    they are a cached run's)."""
    metrics = list(rows[0]["results"]["metrics"])
    speed = [(k, label, fmt) for k, label, fmt in SPEED_COLUMNS if any(r["results"]["timings"].get(k) is not None for r in rows)]
    header = ["checkpoint"]
    for m in metrics:
        header += [m, f"Δ {m} vs first"]
    header += [label for _, label, _ in speed]
    foot = FOOTPRINT_COLUMNS if any(r.get("footprint") for r in rows) else ()
    header += [label for _, label, _ in foot]
    cells = []
    for i, r in enumerate(rows):
        line = [r["label"]]
        for m in metrics:
            info = r["results"]["metrics"][m]
            line.append(f"{_fmt(info['score'])} [{_fmt(info['ci_low'])}, {_fmt(info['ci_high'])}]")
            line.append("—" if i == 0 else _delta_cell((r.get("comparison") or {}).get(m)))
        t = r["results"]["timings"]
        mark = " (cached)" if t.get("cached") else ""
        line += [fmt.format(t[k]) + mark if t.get(k) is not None else "" for k, _, fmt in speed]
        f = r.get("footprint") or {}
        line += [fmt.format(f[k]) if f.get(k) is not None else "" for k, _, fmt in foot]
        cells.append(line)
    return header, cells


SPEED_TABLE = (
    ("batch1", "tokens_per_s", "tok/s @1", "{:,.0f}"), ("batch1", "latency_p50_s", "p50 s @1", "{:.3f}"),
    ("batch1", "latency_p95_s", "p95 s @1", "{:.3f}"), ("batch1", "ttft_p50_s", "TTFT s @1", "{:.4f}"),
    ("batched", "tokens_per_s", "tok/s @B", "{:,.0f}"), ("batched", "latency_p50_s", "p50 s @B", "{:.3f}"),
    ("batched", "latency_p95_s", "p95 s @B", "{:.3f}"), ("batched", "ttft_p50_s", "TTFT s @B", "{:.4f}"),
    (None, "peak_rss_mb", "peak RSS MB", "{:,.0f}"), (None, "peak_gpu_mb", "peak GPU MB", "{:,.0f}"),
)


def speed_table(speed: list[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    """(header, cells) of the uncached speed pass, one row per model."""
    cols = [c for c in SPEED_TABLE if any((s.get(c[0]) if c[0] else s).get(c[1]) is not None for s in speed)]
    header = ["checkpoint", *[label for _, _, label, _ in cols]]
    cells = []
    for s in speed:
        line = [s["label"]]
        for group, key, _, fmt in cols:
            value = (s.get(group) if group else s).get(key)
            line.append(fmt.format(value) if value is not None else "")
        cells.append(line)
    return header, cells


def _speed_legend(speed: list[dict[str, Any]]) -> str:
    s = speed[0]
    return (f"Uncached, each model in its own process after a warm-up: {s['n_prompts']} prompts, fixed-length decoding "
            f"of {s['new_tokens']} tokens (EOS ignored), {s['repeats']} repeats; @1 = one request at a time, @B = "
            f"batches of {s['batch_size']} (a request's latency is its batch's); TTFT = one-token generation; "
            f"device {s['device']}, {s['dtype']}. On a shared machine compare rows, not runs.")


def markdown(bench: dict[str, Any]) -> str:
    out = ["# Checkpoint benchmark", ""]
    for suite, rows in bench["suites"].items():
        header, cells = suite_table(suite, rows)
        out += [f"## {suite}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        out += ["| " + " | ".join(c.replace("|", "\\|") for c in line) + " |" for line in cells]
        out += ["", _legend(), ""]
    if bench.get("speed"):
        header, cells = speed_table(bench["speed"])
        out += ["## Speed (uncached)", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        out += ["| " + " | ".join(line) + " |" for line in cells]
        out += ["", _speed_legend(bench["speed"]), ""]
    return "\n".join(out)


def _legend() -> str:
    return ("Scores with 95% bootstrap intervals. Δ is each checkpoint minus the first, with its 95% paired-bootstrap "
            "interval and direction (better / worse / no difference at α=0.05 after Holm's correction over the "
            "suite's metrics), from a paired test on the same samples: McNemar for exact match/accuracy, paired "
            "bootstrap or approximate randomisation over sufficient statistics otherwise. Timings in this table are "
            "the evaluation's own; \"(cached)\" marks an evaluation read from the result cache, whose timings are "
            "the original run's — see the speed table for uncached figures.")


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
    return images


def _speed_plots(speed: list[dict[str, Any]]) -> list[str]:
    """Tokens/s, latency p50/p95 and TTFT at batch 1 and batched, one group per model."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [s["label"] for s in speed]
    x = np.arange(len(speed))
    panels = [("tokens/s", [("batch1", "tokens_per_s", "@1"), ("batched", "tokens_per_s", "@B")]),
              ("latency s", [("batch1", "latency_p50_s", "p50 @1"), ("batch1", "latency_p95_s", "p95 @1"),
                             ("batched", "latency_p50_s", "p50 @B"), ("batched", "latency_p95_s", "p95 @B")]),
              ("time to first token s", [("batch1", "ttft_p50_s", "@1"), ("batched", "ttft_p50_s", "@B")])]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.2), squeeze=False)
    for ax, (title, series) in zip(axes[0], panels):
        width = 0.8 / len(series)
        for j, (group, key, name) in enumerate(series):
            ax.bar(x + j * width - 0.4 + width / 2, [s[group][key] for s in speed], width, label=name)
        ax.set_xticks(x, labels, rotation=30, ha="right", fontsize=8)
        ax.set_title(title, fontsize=10)
        ax.legend(fontsize=7)
    fig.suptitle("speed (uncached, own process per model)", fontsize=11)
    image = _png(fig)
    plt.close(fig)
    return [image]


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
    if bench.get("speed"):
        header, cells = speed_table(bench["speed"])
        parts.append("<h2>Speed (uncached)</h2><table><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in header) + "</tr>")
        for line in cells:
            parts.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in line) + "</tr>")
        parts.append(f"</table><p class='legend'>{html.escape(_speed_legend(bench['speed']))}</p>")
        parts += [f"<img alt='speed plot' src='data:image/png;base64,{img}'>" for img in _speed_plots(bench["speed"])]
    parts.append("</body></html>")
    return "".join(parts)

"""`llmops data inspect --html`: one self-contained page (inline PNG plots, no scripts, no network)."""

from __future__ import annotations

import base64
import html
import io
from typing import Any


def _hist(values: list[int], title: str, xlabel: str, limit: int | None = None) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 2.8), dpi=90)
    ax.hist(values, bins=min(40, max(5, len(set(values)))), color="#4477aa")
    if limit is not None:
        ax.axvline(limit, color="#cc3311", linestyle="--", label=f"max_length {limit}")
        ax.legend()
    ax.set(title=title, xlabel=xlabel, ylabel="records")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return f'<img alt="{html.escape(title)}" src="data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}">'


def _table(rows: list[tuple[str, Any]]) -> str:
    body = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>" for k, v in rows)
    return f"<table>{body}</table>"


def _pct(p: dict[str, Any]) -> str:
    return f"min {p['min']} · p50 {p['p50']:g} · p90 {p['p90']:g} · p99 {p['p99']:g} · max {p['max']}"


def _groups(title: str, groups: list[dict[str, Any]]) -> str:
    if not groups:
        return f"<h3>{title}</h3><p>none</p>"
    items = "".join(
        f"<li>records {', '.join(str(i + 1) for i in g['records'])}<ul>"
        + "".join(f"<li><pre>{html.escape(t)}</pre></li>" for t in g["texts"]) + "</ul></li>"
        for g in groups
    )
    return f"<h3>{title}</h3><ol>{items}</ol>"


def render(spec: str, model_ref: str, report: dict[str, Any], token_lengths: list[int], char_lengths: list[int]) -> str:
    """The HTML page for one `inspect_records` report (record numbers are 1-based, like file lines)."""
    d, r, cs = report["duplicates"], report["roles"], report["charset"]
    problems = "".join(
        f"<tr><th>{html.escape(k)}</th><td>{v['count']}</td><td>records {', '.join(str(i + 1) for i in v['examples'])}</td></tr>"
        for k, v in report["problems"].items()
    ) or "<tr><td>none found</td></tr>"
    scripts = ", ".join(f"{k} {v:.1%}" for k, v in cs["letters_by_script"].items()) or "no letters"
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>llmops data inspect</title><style>"
        "body{font-family:system-ui,sans-serif;max-width:960px;margin:2em auto;color:#222}"
        "table{border-collapse:collapse}th,td{border:1px solid #ccc;padding:.25em .6em;text-align:left}"
        "pre{white-space:pre-wrap;margin:0;background:#f6f6f6;padding:.3em}</style></head><body>",
        f"<h1>Dataset report: {html.escape(spec)}</h1>",
        _table([
            ("records", report["n_records"]), ("format", report["format"]), ("columns", ", ".join(report["columns"])),
            ("fingerprint", report["fingerprint"]), ("tokenizer", model_ref),
            ("chat template applied", report["chat_template"]),
        ]),
        "<h2>Lengths</h2>",
        _table([("characters", _pct(report["chars"])), (f"tokens ({model_ref})", _pct(report["tokens"]))]),
        _hist(char_lengths, "characters per record", "characters"),
        _hist(token_lengths, "tokens per record", "tokens", report["max_length"]),
        f"<h2>Truncation at max_length {report['max_length']}</h2>",
        _table([("truncated", f"{report['truncated_rate']:.2%}"),
                ("dropped (no supervised token left)", f"{report['dropped_rate']:.2%}"),
                ("examples", ", ".join(str(i + 1) for i in report["truncated_examples"]) or "none")]),
        "<h2>Roles and template</h2>",
        _table([("messages per role", r["messages_per_role"]), ("turns", _pct(r["turns"]) if r["turns"] else "—"),
                ("distinct system prompts", r["distinct_system_prompts"])]),
        "<h2>Duplicates</h2>",
        _table([("exact (normalised text)", f"{d['exact_duplicates']} ({d['exact_rate']:.2%})"),
                (f"near (MinHash Jaccard ≥ {d['minhash']['threshold']})", f"{d['near_duplicates']} ({d['near_rate']:.2%})"),
                ("records left after dedup", d["kept"])]),
        _groups("Exact duplicate groups", d["exact_examples"]),
        _groups("Near-duplicate groups", d["near_examples"]),
        "<h2>Empty, whitespace and encoding problems</h2>",
        f"<table>{problems}</table>",
        "<h2>Characters and scripts</h2>",
        _table([("pure-ASCII records", f"{cs['ascii_records']} of {report['n_records']}"), ("letters by script", scripts),
                ("dominant script", cs["dominant_script"])]),
        "<p><small>Scripts come from Unicode character names; this is not language identification.</small></p>",
        "</body></html>",
    ]
    return "\n".join(parts)

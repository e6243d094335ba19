"""Server-rendered SVG charts (line, bars, intervals): no JavaScript, no CDN, no matplotlib per request.

Pages embed the returned markup inline; every value is escaped, and an empty series draws an
explicit "no data" frame so a missing measurement is never mistaken for zero.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence

PALETTE = ("#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#4b5563", "#db2777")
W, H, PAD_L, PAD_R, PAD_T, PAD_B = 640, 220, 52, 16, 14, 46

Point = tuple[float, float | None]


def _fmt(v: float) -> str:
    if v == 0:
        return "0"
    if abs(v) >= 1000 or abs(v) < 0.01:
        return f"{v:.2g}"
    return f"{v:.3g}"


def _ticks(lo: float, hi: float, n: int = 4) -> list[float]:
    if hi <= lo:
        return [lo]
    step = 10 ** math.floor(math.log10((hi - lo) / n))
    for m in (1, 2, 5, 10):
        if (hi - lo) / (step * m) <= n:
            step *= m
            break
    start = math.ceil(lo / step) * step
    return [start + i * step for i in range(int((hi - start) / step) + 1)]


def _frame(title: str, inner: list[str], legend: Sequence[tuple[str, str]] = ()) -> str:
    # Swatches are SVG with presentation attributes: the UI's CSP forbids inline style attributes.
    items = "".join(f'<span><svg class="swatch" width="12" height="12"><rect width="12" height="12" fill="{c}"/>'
                    f'</svg>{html.escape(label)}</span>' for label, c in legend)
    return (f'<figure class="chart"><figcaption>{html.escape(title)}</figcaption>'
            f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H}" width="{W}" height="{H}" '
            'role="img" '
            f'aria-label="{html.escape(title, quote=True)}" font-family="sans-serif" font-size="11">'
            + "".join(inner) + "</svg>" + (f'<div class="legend">{items}</div>' if items else "") + "</figure>")


def _empty(title: str) -> str:
    return _frame(title, [f'<rect x="{PAD_L}" y="{PAD_T}" width="{W - PAD_L - PAD_R}" height="{H - PAD_T - PAD_B}" '
                          'fill="none" stroke="#ccc"/>',
                          f'<text x="{W / 2}" y="{H / 2}" text-anchor="middle" fill="#888">no data</text>'])


def _axes(y_lo: float, y_hi: float, y_of) -> list[str]:
    out = [f'<line x1="{PAD_L}" y1="{H - PAD_B}" x2="{W - PAD_R}" y2="{H - PAD_B}" stroke="#999"/>',
           f'<line x1="{PAD_L}" y1="{PAD_T}" x2="{PAD_L}" y2="{H - PAD_B}" stroke="#999"/>']
    for t in _ticks(y_lo, y_hi):
        y = y_of(t)
        out.append(f'<line x1="{PAD_L}" y1="{y:.1f}" x2="{W - PAD_R}" y2="{y:.1f}" stroke="#eee"/>'
                   f'<text x="{PAD_L - 4}" y="{y + 4:.1f}" text-anchor="end" fill="#555">{_fmt(t)}</text>')
    return out


def line_chart(title: str, series: dict[str, list[Point]], x_labels: Sequence[str] = (),
               y_range: tuple[float, float] | None = None) -> str:
    """Lines over shared x positions (0..n-1 or numbers); None values break the line."""
    pts = [(x, y) for s in series.values() for x, y in s if y is not None and math.isfinite(y)]
    if not pts:
        return _empty(title)
    xs = [x for x, _ in pts]
    x_lo, x_hi = min(xs), max(xs)
    y_lo, y_hi = y_range or (min(y for _, y in pts), max(y for _, y in pts))
    if y_hi == y_lo:
        y_lo, y_hi = y_lo - 0.5, y_hi + 0.5
    span_x = (x_hi - x_lo) or 1.0

    def x_of(x: float) -> float:
        return PAD_L + (x - x_lo) / span_x * (W - PAD_L - PAD_R) if x_hi > x_lo else (W + PAD_L - PAD_R) / 2

    def y_of(y: float) -> float:
        return H - PAD_B - (y - y_lo) / (y_hi - y_lo) * (H - PAD_T - PAD_B)

    inner = _axes(y_lo, y_hi, y_of)
    if x_labels:
        every = max(1, len(x_labels) // 6)
        for i, label in enumerate(x_labels):
            if i % every == 0 or i == len(x_labels) - 1:
                inner.append(f'<text x="{x_of(i):.1f}" y="{H - PAD_B + 14}" text-anchor="middle" fill="#555">'
                             f'{html.escape(label)}</text>')
    legend = []
    for k, (name, s) in enumerate(series.items()):
        colour = PALETTE[k % len(PALETTE)]
        legend.append((name, colour))
        run: list[str] = []
        for x, y in s + [(0.0, None)]:
            if y is None or not math.isfinite(y):
                if len(run) > 1:
                    inner.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{" ".join(run)}"/>')
                run = []
                continue
            run.append(f"{x_of(x):.1f},{y_of(y):.1f}")
            inner.append(f'<circle cx="{x_of(x):.1f}" cy="{y_of(y):.1f}" r="3" fill="{colour}">'
                         f'<title>{html.escape(name)}: {_fmt(y)}</title></circle>')
    return _frame(title, inner, legend)


def bar_chart(title: str, groups: dict[str, dict[str, float]]) -> str:
    """Grouped bars: {group: {category: value}}, e.g. {model version: {score: count}}."""
    cats = list(dict.fromkeys(c for g in groups.values() for c in g))
    values = [v for g in groups.values() for v in g.values()]
    if not values or max(values) <= 0:
        return _empty(title)
    y_hi = max(values)

    def y_of(y: float) -> float:
        return H - PAD_B - y / y_hi * (H - PAD_T - PAD_B)

    inner = _axes(0.0, y_hi, y_of)
    slot = (W - PAD_L - PAD_R) / max(1, len(cats))
    bar = slot * 0.8 / max(1, len(groups))
    legend = []
    for gi, (name, g) in enumerate(groups.items()):
        colour = PALETTE[gi % len(PALETTE)]
        legend.append((name, colour))
        for ci, cat in enumerate(cats):
            v = g.get(cat, 0.0)
            x = PAD_L + ci * slot + slot * 0.1 + gi * bar
            inner.append(f'<rect x="{x:.1f}" y="{y_of(v):.1f}" width="{bar:.1f}" height="{H - PAD_B - y_of(v):.1f}" '
                         f'fill="{colour}"><title>{html.escape(name)} {html.escape(cat)}: {_fmt(v)}</title></rect>')
    for ci, cat in enumerate(cats):
        inner.append(f'<text x="{PAD_L + (ci + 0.5) * slot:.1f}" y="{H - PAD_B + 14}" text-anchor="middle" '
                     f'fill="#555">{html.escape(cat)}</text>')
    return _frame(title, inner, legend)


def interval_chart(title: str, rows: Sequence[tuple[str, float, float | None, float | None]]) -> str:
    """One point per label with its interval whiskers: (label, estimate, low, high)."""
    vals = [v for _, e, lo, hi in rows for v in (e, lo, hi) if v is not None]
    if not vals:
        return _empty(title)
    lo_all, hi_all = min(vals), max(vals)
    if hi_all == lo_all:
        lo_all, hi_all = lo_all - 0.5, hi_all + 0.5
    row_h = 22
    height = PAD_T + row_h * len(rows) + 24
    label_w = 200

    def x_of(v: float) -> float:
        return label_w + (v - lo_all) / (hi_all - lo_all) * (W - label_w - PAD_R)

    inner = []
    for t in _ticks(lo_all, hi_all):
        inner.append(f'<line x1="{x_of(t):.1f}" y1="{PAD_T}" x2="{x_of(t):.1f}" y2="{height - 20}" stroke="#eee"/>'
                     f'<text x="{x_of(t):.1f}" y="{height - 6}" text-anchor="middle" fill="#555">{_fmt(t)}</text>')
    for i, (label, est, lo, hi) in enumerate(rows):
        y = PAD_T + i * row_h + row_h / 2
        inner.append(f'<text x="{label_w - 8}" y="{y + 4:.1f}" text-anchor="end">{html.escape(label[:32])}</text>')
        if lo is not None and hi is not None:
            inner.append(f'<line x1="{x_of(lo):.1f}" y1="{y:.1f}" x2="{x_of(hi):.1f}" y2="{y:.1f}" stroke="#2563eb" '
                         'stroke-width="2"/>')
        tip = f"{label}: {_fmt(est)}" + (f" [{_fmt(lo)}, {_fmt(hi)}]" if lo is not None and hi is not None else "")
        inner.append(f'<circle cx="{x_of(est):.1f}" cy="{y:.1f}" r="4" fill="#1e3a8a"><title>{html.escape(tip)}'
                     "</title></circle>")
    svg = _frame(title, inner)
    return svg.replace(f'viewBox="0 0 {W} {H}" width="{W}" height="{H}"',
                       f'viewBox="0 0 {W} {height}" width="{W}" height="{height}"', 1)

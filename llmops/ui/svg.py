"""Inline SVG charts from presentation attributes only (no inline style or script: the CSP holds).

Server-rendered, so a page with curves costs no JavaScript and no image request; a line
chart of a few thousand points is a few kilobytes (points are thinned to `MAX_POINTS`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from html import escape

from markupsafe import Markup

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf")
MAX_POINTS = 600
Series = tuple[str, Sequence[tuple[float, float]]]


def _ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """About `n` round tick values covering [lo, hi]."""
    if hi <= lo:
        return [lo]
    raw = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step) * step
    return [first + i * step for i in range(int((hi - first) / step) + 1)]


def _label(v: float) -> str:
    return f"{v:.3g}" if abs(v) < 1e5 else f"{v:.2e}"


def _thin(points: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    if len(points) <= MAX_POINTS:
        return list(points)
    stride = len(points) / MAX_POINTS
    return [points[int(i * stride)] for i in range(MAX_POINTS)] + [points[-1]]


def _frame(xs: Sequence[float], ys: Sequence[float], title: str, xlabel: str, ylabel: str, width: int,
           height: int) -> tuple[list[str], Callable[[float], float], Callable[[float], float]]:
    """The SVG head, grid, ticks and labels of a chart over these values, and its coordinate maps."""
    left, right, top, bottom = 56, 12, 26, 40
    x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
    if x1 == x0:
        x0, x1 = x0 - 1, x1 + 1
    pad = (y1 - y0) * 0.05 or abs(y0) * 0.05 or 1.0
    y0, y1 = y0 - pad, y1 + pad
    pw, ph = width - left - right, height - top - bottom

    def sx(x: float) -> float:
        return left + (x - x0) / (x1 - x0) * pw

    def sy(y: float) -> float:
        return top + (1 - (y - y0) / (y1 - y0)) * ph

    out = [f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
           f'width="{width}" height="{height}" role="img" aria-label="{escape(title)}">',
           f'<text x="{left}" y="16" font-size="13" font-weight="600" fill="#1b1f24">{escape(title)}</text>']
    for t in _ticks(y0, y1):
        y = sy(t)
        out.append(f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e5e7eb"/>')
        out.append(f'<text x="{left - 6}" y="{y + 4:.1f}" font-size="11" text-anchor="end" fill="#5b6570">{_label(t)}</text>')
    for t in _ticks(x0, x1):
        x = sx(t)
        out.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top + ph}" y2="{top + ph + 4}" stroke="#5b6570"/>')
        out.append(f'<text x="{x:.1f}" y="{top + ph + 16}" font-size="11" text-anchor="middle" fill="#5b6570">{_label(t)}</text>')
    out.append(f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#9ca3af"/>')
    out.append(f'<text x="{left + pw / 2:.0f}" y="{height - 6}" font-size="11" text-anchor="middle" fill="#5b6570">{escape(xlabel)}</text>')
    if ylabel:
        out.append(f'<text x="12" y="{top + ph / 2:.0f}" font-size="11" text-anchor="middle" fill="#5b6570" '
                   f'transform="rotate(-90 12 {top + ph / 2:.0f})">{escape(ylabel)}</text>')
    return out, sx, sy


def line_chart(series: Sequence[Series], *, title: str, xlabel: str = "step", ylabel: str = "",
               width: int = 560, height: int = 280, dashed: Sequence[str] = ()) -> Markup:
    """Overlaid lines (one per series, colours in `PALETTE` order); series named in `dashed` are dashed."""
    clean = [(name, _thin([(x, y) for x, y in s if math.isfinite(x) and math.isfinite(y)])) for name, s in series]
    pts = [p for _, s in clean for p in s]
    if not pts:
        return Markup(f'<p class="muted">{escape(title)}: no data</p>')
    out, sx, sy = _frame([p[0] for p in pts], [p[1] for p in pts], title, xlabel, ylabel, width, height)
    for i, (name, s) in enumerate(clean):
        colour = PALETTE[i % len(PALETTE)]
        dash = ' stroke-dasharray="5 3"' if name in dashed else ""
        if len(s) == 1:
            out.append(f'<circle cx="{sx(s[0][0]):.1f}" cy="{sy(s[0][1]):.1f}" r="3" fill="{colour}">'
                       f'<title>{escape(name)}</title></circle>')
        elif s:
            path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in s)
            out.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="1.6"{dash}>'
                       f'<title>{escape(name)}</title></polyline>')
    out.append("</svg>")
    return Markup("".join(out))


def scatter(points: Sequence[tuple[float, float, str, bool]], *, title: str, xlabel: str, ylabel: str,
            width: int = 560, height: int = 320) -> Markup:
    """Points (x, y, label, highlighted): highlighted ones (a Pareto front) are filled and joined."""
    points = [p for p in points if math.isfinite(p[0]) and math.isfinite(p[1])]
    if not points:
        return Markup(f'<p class="muted">{escape(title)}: no data</p>')
    out, sx, sy = _frame([p[0] for p in points], [p[1] for p in points], title, xlabel, ylabel, width, height)
    front = sorted((p for p in points if p[3]), key=lambda p: p[0])
    if len(front) > 1:
        path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y, _, _ in front)
        out.append(f'<polyline points="{path}" fill="none" stroke="#d62728" stroke-width="1.2" stroke-dasharray="4 3"/>')
    for x, y, label, hot in points:
        out.append(f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="4.5" fill="{"#d62728" if hot else "#ffffff"}" '
                   f'stroke="#1f77b4" stroke-width="1.4"><title>{escape(label)}</title></circle>')
    out.append("</svg>")
    return Markup("".join(out))

"""Inline SVG charts drawn on the server: lines, scatter, grouped bars and intervals.

Presentation attributes only, no inline style or script, so the UI's strict CSP holds; a page
with charts costs no JavaScript and no image request (a line of a few thousand points is a few
kilobytes: points are thinned to `MAX_POINTS`). Every label is escaped; a missing value (None or
not finite) breaks a line instead of drawing a zero, and a chart without data says "no data".
Each chart is a ``<figure class="chart">``: caption, the SVG, and a legend whose swatches are
small SVGs too (a ``style`` attribute would break the CSP).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from html import escape

from markupsafe import Markup

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf", "#4b5563", "#db2777",
           "#bcbd22", "#0f766e", "#7c2d12")
MAX_POINTS = 600
MAX_X_LABELS = 7
Point = tuple[float, float | None]
Series = tuple[str, Sequence[Point]]
INK, MUTED, GRID = "#1b1f24", "#5b6570", "#e5e7eb"


def _ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """About `n` round tick values covering [lo, hi]."""
    if hi <= lo:
        return [lo]
    raw = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step) * step
    return [first + i * step for i in range(int((hi - first) / step + 1e-9) + 1)]


def _label(v: float) -> str:
    if v == 0:
        return "0"
    if abs(v) >= 1e6 or abs(v) < 1e-3:
        return f"{v:.2e}"
    return f"{v:.0f}" if abs(v) >= 1000 else f"{v:.4g}"


def _finite(y: float | None) -> bool:
    return y is not None and math.isfinite(y)


def _thin(points: Sequence[Point]) -> list[Point]:
    if len(points) <= MAX_POINTS:
        return list(points)
    stride = len(points) / MAX_POINTS
    return [points[int(i * stride)] for i in range(MAX_POINTS)] + [points[-1]]


def _figure(title: str, svg: list[str], legend: Sequence[tuple[str, str, bool]] = ()) -> Markup:
    """Caption, SVG and legend ((label, colour, dashed) per entry) as one figure."""
    dash = ' stroke-dasharray="4 2"'
    items = "".join(
        f'<span><svg class="swatch" width="14" height="10"><line x1="0" y1="5" x2="14" y2="5" stroke="{c}" '
        f'stroke-width="4"{dash if dashed else ""}/></svg>{escape(label)}</span>'
        for label, c, dashed in legend)
    return Markup(f'<figure class="chart"><figcaption>{escape(title)}</figcaption>' + "".join(svg)
                  + (f'<div class="legend">{items}</div>' if items else "") + "</figure>")


def _svg_open(title: str, width: int, height: int) -> str:
    return (f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
            f'width="{width}" height="{height}" role="img" aria-label="{escape(title)}" font-family="sans-serif">')


def _empty(title: str, width: int = 560, height: int = 120) -> Markup:
    return _figure(title, [_svg_open(title, width, height),
                           f'<rect x="1" y="1" width="{width - 2}" height="{height - 2}" fill="none" stroke="#ccc"/>',
                           f'<text x="{width / 2:.0f}" y="{height / 2:.0f}" font-size="12" text-anchor="middle" '
                           f'fill="#888">no data</text></svg>'])


def _frame(xs: Sequence[float], ys: Sequence[float], title: str, xlabel: str, ylabel: str, width: int, height: int,
           x_labels: Sequence[str] = (), y_range: tuple[float, float] | None = None
           ) -> tuple[list[str], Callable[[float], float], Callable[[float], float]]:
    """The SVG head, grid, ticks and axis labels over these values, and its coordinate maps.

    With `x_labels`, x is a position 0..n-1 labelled by them (time windows); else a number with ticks."""
    left, right, top, bottom = 56, 20, 10, 40
    x0, x1 = (0.0, float(len(x_labels) - 1)) if x_labels else (min(xs), max(xs))
    if x1 == x0:
        x0, x1 = x0 - 1, x1 + 1
    if y_range is not None:
        y0, y1 = y_range
    else:
        y0, y1 = min(ys), max(ys)
        pad = (y1 - y0) * 0.05 or abs(y0) * 0.05 or 1.0
        y0, y1 = y0 - pad, y1 + pad
    pw, ph = width - left - right, height - top - bottom

    def sx(x: float) -> float:
        return left + (x - x0) / (x1 - x0) * pw

    def sy(y: float) -> float:
        return top + (1 - (y - y0) / (y1 - y0)) * ph

    out = [_svg_open(title, width, height)]
    for t in _ticks(y0, y1):
        y = sy(t)
        out.append(f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" stroke="{GRID}"/>')
        out.append(f'<text x="{left - 6}" y="{y + 4:.1f}" font-size="11" text-anchor="end" fill="{MUTED}">'
                   f'{_label(t)}</text>')
    if x_labels:
        every = max(1, math.ceil(len(x_labels) / MAX_X_LABELS))
        ticks = [(float(i), lab) for i, lab in enumerate(x_labels) if i % every == 0 or i == len(x_labels) - 1]
    else:
        ticks = [(t, _label(t)) for t in _ticks(x0, x1)]
    for t, text in ticks:
        x = sx(t)
        out.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top + ph}" y2="{top + ph + 4}" stroke="{MUTED}"/>')
        out.append(f'<text x="{x:.1f}" y="{top + ph + 16}" font-size="11" text-anchor="middle" fill="{MUTED}">'
                   f'{escape(text)}</text>')
    out.append(f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#9ca3af"/>')
    if xlabel:
        out.append(f'<text x="{left + pw / 2:.0f}" y="{height - 6}" font-size="11" text-anchor="middle" '
                   f'fill="{MUTED}">{escape(xlabel)}</text>')
    if ylabel:
        out.append(f'<text x="12" y="{top + ph / 2:.0f}" font-size="11" text-anchor="middle" fill="{MUTED}" '
                   f'transform="rotate(-90 12 {top + ph / 2:.0f})">{escape(ylabel)}</text>')
    return out, sx, sy


def line_chart(series: Sequence[Series] | Mapping[str, Sequence[Point]], *, title: str, xlabel: str = "step",
               ylabel: str = "", x_labels: Sequence[str] = (), y_range: tuple[float, float] | None = None,
               width: int = 560, height: int = 260, dashed: Sequence[str] = ()) -> Markup:
    """Overlaid lines, one per series (colours in `PALETTE` order), named by a legend.

    `series`: (name, points) pairs or a {name: points} mapping; a point is (x, y) and a y of None
    breaks the line. With `x_labels` the x values are positions 0..n-1 (e.g. time windows) and
    every point gets a marker with its value; series named in `dashed` are dashed."""
    items = list(series.items()) if isinstance(series, Mapping) else list(series)
    clean = [(name, _thin([(x, y) for x, y in pts if math.isfinite(x)])) for name, pts in items]
    values = [(x, y) for _, pts in clean for x, y in pts if _finite(y)]
    if not values:
        return _empty(title)
    out, sx, sy = _frame([p[0] for p in values], [p[1] for p in values], title, xlabel, ylabel, width, height,
                         x_labels, y_range)
    legend = []
    for i, (name, pts) in enumerate(clean):
        colour = PALETTE[i % len(PALETTE)]
        dash = ' stroke-dasharray="5 3"' if name in dashed else ""
        legend.append((name, colour, name in dashed))
        run: list[tuple[float, float]] = []
        for x, y in [*pts, (0.0, None)]:  # a trailing gap flushes the last run
            if _finite(y):
                run.append((x, y))  # type: ignore[arg-type]
                if x_labels:
                    out.append(f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="3" fill="{colour}">'  # type: ignore[arg-type]
                               f'<title>{escape(name)}: {_label(y)}</title></circle>')  # type: ignore[arg-type]
                continue
            if len(run) > 1:
                path = " ".join(f"{sx(a):.1f},{sy(b):.1f}" for a, b in run)
                out.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="1.8"{dash}>'
                           f'<title>{escape(name)}</title></polyline>')
            elif run and not x_labels:  # an isolated point: no line to draw, so a dot
                out.append(f'<circle cx="{sx(run[0][0]):.1f}" cy="{sy(run[0][1]):.1f}" r="3" fill="{colour}">'
                           f'<title>{escape(name)}: {_label(run[0][1])}</title></circle>')
            run = []
    out.append("</svg>")
    return _figure(title, out, [entry for entry in legend if entry[0]])


def scatter(points: Sequence[tuple[float, float, str, bool]], *, title: str, xlabel: str, ylabel: str,
            width: int = 560, height: int = 320) -> Markup:
    """Points (x, y, label, highlighted): highlighted ones (a Pareto front) are filled and joined."""
    points = [p for p in points if math.isfinite(p[0]) and math.isfinite(p[1])]
    if not points:
        return _empty(title)
    out, sx, sy = _frame([p[0] for p in points], [p[1] for p in points], title, xlabel, ylabel, width, height)
    front = sorted((p for p in points if p[3]), key=lambda p: p[0])
    if len(front) > 1:
        path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y, _, _ in front)
        out.append(f'<polyline points="{path}" fill="none" stroke="#d62728" stroke-width="1.2" stroke-dasharray="4 3"/>')
    for x, y, label, hot in points:
        out.append(f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="4.5" fill="{"#d62728" if hot else "#ffffff"}" '
                   f'stroke="#1f77b4" stroke-width="1.4"><title>{escape(label)}</title></circle>')
    out.append("</svg>")
    return _figure(title, out)


def bar_chart(title: str, groups: Mapping[str, Mapping[str, float]], *, width: int = 640, height: int = 220) -> Markup:
    """Grouped bars: {group: {category: value}}, e.g. {model version: {score: count}}; a group per colour."""
    cats = list(dict.fromkeys(c for g in groups.values() for c in g))
    values = [v for g in groups.values() for v in g.values()]
    if not values or max(values) <= 0:
        return _empty(title)
    left, right, top, bottom = 52, 16, 10, 28
    y_hi = max(values)

    def y_of(y: float) -> float:
        return height - bottom - y / y_hi * (height - top - bottom)

    out = [_svg_open(title, width, height)]
    for t in _ticks(0.0, y_hi, 4):
        out.append(f'<line x1="{left}" y1="{y_of(t):.1f}" x2="{width - right}" y2="{y_of(t):.1f}" stroke="{GRID}"/>'
                   f'<text x="{left - 4}" y="{y_of(t) + 4:.1f}" font-size="11" text-anchor="end" fill="{MUTED}">'
                   f'{_label(t)}</text>')
    out.append(f'<line x1="{left}" y1="{height - bottom}" x2="{width - right}" y2="{height - bottom}" stroke="#999"/>')
    slot = (width - left - right) / max(1, len(cats))
    bar = slot * 0.8 / max(1, len(groups))
    legend = []
    for gi, (name, g) in enumerate(groups.items()):
        colour = PALETTE[gi % len(PALETTE)]
        legend.append((name, colour, False))
        for ci, cat in enumerate(cats):
            v = g.get(cat, 0.0)
            x = left + ci * slot + slot * 0.1 + gi * bar
            out.append(f'<rect x="{x:.1f}" y="{y_of(v):.1f}" width="{bar:.1f}" height="{height - bottom - y_of(v):.1f}" '
                       f'fill="{colour}"><title>{escape(name)} {escape(cat)}: {_label(v)}</title></rect>')
    for ci, cat in enumerate(cats):
        out.append(f'<text x="{left + (ci + 0.5) * slot:.1f}" y="{height - bottom + 14}" font-size="11" '
                   f'text-anchor="middle" fill="{MUTED}">{escape(cat)}</text>')
    out.append("</svg>")
    return _figure(title, out, legend)


def interval_chart(title: str, rows: Sequence[tuple[str, float, float | None, float | None]], *,
                   width: int = 640) -> Markup:
    """One point per label with its interval whiskers: (label, estimate, low, high)."""
    vals = [v for _, e, lo, hi in rows for v in (e, lo, hi) if v is not None]
    if not vals:
        return _empty(title)
    lo_all, hi_all = min(vals), max(vals)
    if hi_all == lo_all:
        lo_all, hi_all = lo_all - 0.5, hi_all + 0.5
    top, row_h, label_w, right = 10, 22, 200, 16
    height = top + row_h * len(rows) + 24

    def x_of(v: float) -> float:
        return label_w + (v - lo_all) / (hi_all - lo_all) * (width - label_w - right)

    out = [_svg_open(title, width, height)]
    for t in _ticks(lo_all, hi_all, 4):
        out.append(f'<line x1="{x_of(t):.1f}" y1="{top}" x2="{x_of(t):.1f}" y2="{height - 20}" stroke="{GRID}"/>'
                   f'<text x="{x_of(t):.1f}" y="{height - 6}" font-size="11" text-anchor="middle" fill="{MUTED}">'
                   f'{_label(t)}</text>')
    for i, (label, est, lo, hi) in enumerate(rows):
        y = top + i * row_h + row_h / 2
        out.append(f'<text x="{label_w - 8}" y="{y + 4:.1f}" font-size="11" text-anchor="end" fill="{INK}">'
                   f'{escape(label[:32])}</text>')
        if lo is not None and hi is not None:
            out.append(f'<line x1="{x_of(lo):.1f}" y1="{y:.1f}" x2="{x_of(hi):.1f}" y2="{y:.1f}" stroke="{PALETTE[0]}" '
                       'stroke-width="2"/>')
        tip = f"{label}: {_label(est)}" + (f" [{_label(lo)}, {_label(hi)}]" if lo is not None and hi is not None else "")
        out.append(f'<circle cx="{x_of(est):.1f}" cy="{y:.1f}" r="4" fill="#1e3a8a"><title>{escape(tip)}</title></circle>')
    out.append("</svg>")
    return _figure(title, out)

"""Server-rendered SVG charts: values escaped, gaps kept, empty data drawn as "no data" (never as zero)."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from llmops.ui import svg

NS = "{http://www.w3.org/2000/svg}"


def _svg(markup: str) -> ET.Element:
    """The chart's SVG (the first one: the legend's swatches are SVGs too)."""
    start = markup.index('<svg class="chart"')
    return ET.fromstring(markup[start: markup.index("</svg>", start) + 6])


def test_window_line_chart_breaks_at_missing_values_and_escapes_labels():
    out = svg.line_chart({"a&b": [(0, 1.0), (1, None), (2, 3.0), (3, 2.0)]}, title="quality <m>", xlabel="",
                         x_labels=["d0", "d1", "d2", "d3"])
    root = _svg(out)
    assert len(root.findall(f"{NS}polyline")) == 1  # (0) alone is a point; (2, 3) a line: None is a gap
    assert len(root.findall(f"{NS}circle")) == 3  # a marker with its value per window
    assert "quality &lt;m&gt;" in out and "a&amp;b" in out
    assert [t.text for t in root.findall(f"{NS}text") if t.text and t.text.startswith("d")] == ["d0", "d1", "d2", "d3"]
    assert "style=" not in out and "<script" not in out  # presentation attributes only: the CSP holds


def test_step_line_chart_overlays_series_thins_points_and_marks_dashed_ones():
    long = [(float(i), 1.0 / (1 + i)) for i in range(5000)]
    out = svg.line_chart([("train", long), ("eval", [(0.0, 1.0), (4000.0, 0.2)]), ("one", [(10.0, 0.5)])],
                         title="loss", ylabel="loss", dashed=["eval"])
    root = _svg(out)
    lines = root.findall(f"{NS}polyline")
    assert len(lines) == 2 and lines[1].get("stroke-dasharray")  # the dashed series is dashed
    assert len(lines[0].get("points").split()) <= svg.MAX_POINTS + 1  # thinned
    assert len(root.findall(f"{NS}circle")) == 1  # only the isolated point gets a dot
    assert out.count('class="swatch"') == 3  # one legend entry per series


def test_empty_series_say_no_data():
    assert "no data" in svg.line_chart({"a": [(0, None)]}, title="t")
    assert "no data" in svg.line_chart([("a", [])], title="t")
    assert "no data" in svg.bar_chart("t", {})
    assert "no data" in svg.scatter([], title="t", xlabel="x", ylabel="y")
    assert "no data" in svg.interval_chart("t", [])


def test_bar_and_interval_charts_scale_to_their_data():
    root = _svg(svg.bar_chart("d", {"m/1": {"1": 2, "2": 4}, "m/2": {"1": 1, "2": 0}}))
    rects = root.findall(f"{NS}rect")
    heights = sorted(float(r.get("height")) for r in rects)
    assert heights[0] == 0.0 and heights[-1] == 2 * heights[-2]  # 4 is twice 2
    out = svg.interval_chart("acc", [("v1", 0.5, 0.4, 0.6), ("v2", 0.7, None, None)])
    assert "v1: 0.5 [0.4, 0.6]" in out and "v2: 0.7" in out


def test_axis_labels_read_as_plain_numbers():
    assert [svg._label(v) for v in (0, 5560.0, 123456.0, 0.25, 0.30000000000000004, 2e-5, 3e7)] == [
        "0", "5560", "123456", "0.25", "0.3", "2.00e-05", "3.00e+07"]


def test_scatter_joins_the_highlighted_front():
    root = _svg(svg.scatter([(1.0, 2.0, "a", True), (2.0, 1.0, "b", True), (2.0, 2.0, "c", False)],
                            title="front", xlabel="x", ylabel="y"))
    assert len(root.findall(f"{NS}circle")) == 3 and len(root.findall(f"{NS}polyline")) == 1

"""Server-rendered SVG charts: values escaped, gaps kept, empty data drawn as "no data" (never as zero)."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from llmops.ui import svgchart


def _svg(markup: str) -> ET.Element:
    start = markup.index("<svg")
    return ET.fromstring(markup[start: markup.index("</svg>") + 6])


def test_line_chart_breaks_at_missing_values_and_escapes_labels():
    out = svgchart.line_chart("quality <m>", {"a&b": [(0, 1.0), (1, None), (2, 3.0), (3, 2.0)]}, ["d0", "d1", "d2", "d3"])
    root = _svg(out)
    ns = "{http://www.w3.org/2000/svg}"
    assert len(root.findall(f"{ns}polyline")) == 1  # (0) alone is a point; (2, 3) a line: None is a gap
    assert len(root.findall(f"{ns}circle")) == 3
    assert "quality &lt;m&gt;" in out and "a&amp;b" in out


def test_empty_series_say_no_data():
    assert "no data" in svgchart.line_chart("t", {"a": [(0, None)]})
    assert "no data" in svgchart.bar_chart("t", {})


def test_bar_and_interval_charts_scale_to_their_data():
    root = _svg(svgchart.bar_chart("d", {"m/1": {"1": 2, "2": 4}, "m/2": {"1": 1, "2": 0}}))
    rects = root.findall("{http://www.w3.org/2000/svg}rect")
    heights = sorted(float(r.get("height")) for r in rects)
    assert heights[0] == 0.0 and heights[-1] == 2 * heights[-2]  # 4 is twice 2
    out = svgchart.interval_chart("acc", [("v1", 0.5, 0.4, 0.6), ("v2", 0.7, None, None)])
    assert "v1: 0.5 [0.4, 0.6]" in out and "v2: 0.7" in out

"""Lineage graph of a registered model: versions, their bases, parents, data and runs.

Exported as Mermaid (for Markdown), Graphviz DOT, or a self-contained HTML page with an
inline SVG (no JavaScript, no network: the layout is a simple layered one computed here).
"""

from __future__ import annotations

import hashlib
import html
from collections.abc import Callable
from dataclasses import dataclass, field

from llmops.registry.entities import ModelVersion


@dataclass
class LineageGraph:
    nodes: dict[str, dict[str, str]] = field(default_factory=dict)  # id -> {label, kind}
    edges: list[tuple[str, str, str]] = field(default_factory=list)  # (src, dst, label)

    def node(self, key: str, label: str, kind: str) -> str:
        nid = "n" + hashlib.sha1(f"{kind}:{key}".encode()).hexdigest()[:10]
        self.nodes.setdefault(nid, {"label": label, "kind": kind})
        return nid

    def edge(self, src: str, dst: str, label: str) -> None:
        if (src, dst, label) not in self.edges:
            self.edges.append((src, dst, label))


def _short(value: str, n: int = 12) -> str:
    return value if len(value) <= n else value[:n] + "…"


def build_graph(versions: list[ModelVersion]) -> LineageGraph:
    """Nodes for versions, base models, datasets, feedback snapshots and runs."""
    g = LineageGraph()
    for mv in versions:
        label = f"{mv.name}/{mv.version}" + (f" [{', '.join(mv.aliases)}]" if mv.aliases else "")
        vid = g.node(f"{mv.name}/{mv.version}", label, "version")
        lin = mv.lineage
        parent = lin.get("parent_version")
        if parent not in (None, ""):
            pkey = f"{mv.name}/{parent}" if isinstance(parent, int) or str(parent).isdigit() else str(parent)
            how = f"compressed ({lin['compression'].get('method')})" if isinstance(lin.get("compression"), dict) else "fine-tuned"
            g.edge(g.node(pkey, pkey, "version"), vid, how)
        elif lin.get("base_model_ref"):
            base = str(lin["base_model_ref"])
            blabel = base + (f"\nsha256 {_short(str(lin['base_model_hash']))}" if lin.get("base_model_hash") else "")
            g.edge(g.node(base, blabel, "base"), vid, "base")
        fps = lin.get("dataset_fingerprints") or {}
        items = fps.items() if isinstance(fps, dict) else ((str(i), f) for i, f in enumerate(fps))
        for key, fp in items:
            g.edge(g.node(str(fp), f"data {key}\n{_short(str(fp))}", "data"), vid, "trained on")
        if lin.get("feedback_snapshot_id"):
            snap = str(lin["feedback_snapshot_id"])
            g.edge(g.node(snap, f"feedback {_short(snap)}", "feedback"), vid, "preferences")
        if lin.get("run_id"):
            run = str(lin["run_id"])
            recipe = f"\nrecipe {_short(str(lin['recipe_hash']))}" if lin.get("recipe_hash") else ""
            g.edge(g.node(run, f"run {_short(run, 24)}{recipe}", "run"), vid, "produced")
    return g


_MERMAID_SHAPES = {"version": ('["', '"]'), "base": ('[("', '")]'), "data": ('[/"', '"/]'),
                   "feedback": ('{{"', '"}}'), "run": ('("', '")')}


def to_mermaid(g: LineageGraph) -> str:
    lines = ["graph LR"]
    for nid, n in g.nodes.items():
        left, right = _MERMAID_SHAPES[n["kind"]]
        text = n["label"].replace('"', "'").replace("\n", "<br/>")
        lines.append(f"  {nid}{left}{text}{right}")
    lines += [f"  {s} -->|{label}| {d}" for s, d, label in g.edges]
    return "\n".join(lines) + "\n"


_DOT_SHAPES = {"version": "box", "base": "cylinder", "data": "parallelogram", "feedback": "hexagon", "run": "ellipse"}


def _dot_quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def to_dot(g: LineageGraph) -> str:
    lines = ["digraph lineage {", "  rankdir=LR;", '  node [fontname="Helvetica"];']
    for nid, n in g.nodes.items():
        lines.append(f"  {nid} [label={_dot_quote(n['label'])}, shape={_DOT_SHAPES[n['kind']]}];")
    lines += [f"  {s} -> {d} [label={_dot_quote(label)}];" for s, d, label in g.edges]
    return "\n".join(lines) + "\n}\n"


_COLOURS = {"version": "#dbeafe", "base": "#fde68a", "data": "#dcfce7", "feedback": "#fce7f3", "run": "#e5e7eb"}


def _layers(g: LineageGraph) -> dict[str, int]:
    depth = {nid: 0 for nid in g.nodes}
    for _ in range(len(g.nodes)):  # longest-path layering; the graph is acyclic by construction
        changed = False
        for s, d, _label in g.edges:
            if depth[d] < depth[s] + 1:
                depth[d] = depth[s] + 1
                changed = True
        if not changed:
            break
    return depth


def to_svg(g: LineageGraph, href: Callable[[str, dict[str, str]], str | None] | None = None) -> str:
    """The graph drawn as inline SVG (layered left to right; no JavaScript, no network).

    `href(node_id, node)` may return a link for a node: the web UI makes versions clickable."""
    w, h, gap_x, gap_y = 200, 56, 80, 24
    depth = _layers(g)
    rows: dict[int, int] = {}
    pos = {}
    for nid in g.nodes:
        col = depth[nid]
        pos[nid] = (20 + col * (w + gap_x), 20 + rows.get(col, 0) * (h + gap_y))
        rows[col] = rows.get(col, 0) + 1
    width = 40 + (max(depth.values(), default=0) + 1) * (w + gap_x)
    height = 40 + max(rows.values(), default=1) * (h + gap_y)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" '
             'class="lineage">',
             '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="8" markerHeight="8" '
             'orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#555"/></marker></defs>']
    for s, d, label in g.edges:
        (x1, y1), (x2, y2) = pos[s], pos[d]
        x1, y1, x2, y2 = x1 + w, y1 + h / 2, x2, y2 + h / 2
        parts.append(f'<line x1="{x1}" y1="{y1}" x2="{x2}" y2="{y2}" stroke="#555" marker-end="url(#arrow)"/>')
        parts.append(f'<text x="{(x1 + x2) / 2}" y="{(y1 + y2) / 2 - 4}" font-size="10" text-anchor="middle" '
                     f'fill="#555">{html.escape(label)}</text>')
    for nid, n in g.nodes.items():
        x, y = pos[nid]
        link = href(nid, n) if href else None
        node = [f'<rect x="{x}" y="{y}" width="{w}" height="{h}" rx="8" fill="{_COLOURS[n["kind"]]}" '
                f'stroke="#333"><title>{html.escape(n["label"])}</title></rect>']
        for i, line in enumerate(n["label"].split("\n")[:3]):
            node.append(f'<text x="{x + w / 2}" y="{y + 20 + i * 14}" font-size="12" text-anchor="middle">'
                        f'{html.escape(_short(line, 30))}</text>')
        if link:
            parts.append(f'<a href="{html.escape(link, quote=True)}" data-node="{nid}">' + "".join(node) + "</a>")
        else:
            parts.extend(node)
    parts.append("</svg>")
    return "\n".join(parts)


def to_html(g: LineageGraph, title: str) -> str:
    """A standalone page: inline SVG drawing plus the Mermaid source for reuse."""
    return (
        "<!doctype html>\n<html><head><meta charset=\"utf-8\">"
        f"<title>{html.escape(title)}</title></head><body>\n<h1>{html.escape(title)}</h1>\n"
        + to_svg(g)
        + f"\n<details><summary>Mermaid source</summary><pre>{html.escape(to_mermaid(g))}</pre></details>\n"
        "</body></html>\n"
    )


def export(versions: list[ModelVersion], fmt: str, title: str = "lineage") -> str:
    g = build_graph(versions)
    if fmt == "mermaid":
        return to_mermaid(g)
    if fmt == "dot":
        return to_dot(g)
    if fmt == "html":
        return to_html(g, title)
    raise ValueError(f"unknown lineage format {fmt!r} (mermaid, dot, html)")

"""Find and read evaluation outputs for browsing: eval directories, bench directories, samples.

`find_outputs(roots)` lists the ``results.json`` (an `llmops eval run` directory) and
``bench.json`` (an `llmops bench` directory) folders under some roots; `sample_page` and
`paired_sample_page` filter and page the per-sample rows of one or two paired runs. The
web UI and any script read evaluations through these and `llmops.eval.api`
(`load_results`, `paired_compare`), never by parsing the files themselves.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llmops.errors import DataError

RESULTS, BENCH = "results.json", "bench.json"
MAX_DEPTH = 5


@dataclass(frozen=True)
class EvalOutput:
    kind: str  # "eval" or "bench"
    root: Path
    path: Path  # the folder
    mtime: float

    @property
    def rel(self) -> str:
        return self.path.relative_to(self.root).as_posix() or "."


def find_outputs(roots: Iterable[str | Path], max_depth: int = MAX_DEPTH) -> list[EvalOutput]:
    """Eval and bench folders under `roots`, newest first (a bench's own eval folders are listed too)."""
    found: list[EvalOutput] = []
    for root in roots:
        root = Path(root).resolve()
        stack = [(root, 0)]
        while stack:
            folder, depth = stack.pop()
            for name, kind in ((RESULTS, "eval"), (BENCH, "bench")):
                f = folder / name
                if f.is_file():
                    found.append(EvalOutput(kind, root, folder, f.stat().st_mtime))
            if depth >= max_depth or (folder / RESULTS).is_file():
                continue
            try:
                entries = list(os.scandir(folder))
            except OSError:
                continue
            stack.extend((Path(e.path), depth + 1) for e in entries
                         if e.is_dir(follow_symlinks=False) and not e.name.startswith(".")
                         and e.name not in ("checkpoints", "final", "tokenized", "ranks"))
    return sorted(found, key=lambda o: (-o.mtime, str(o.path)))


def resolve_under(roots: Iterable[str | Path], index: int, rel: str) -> Path:
    """The folder `rel` under root number `index`, refusing anything that escapes the root."""
    roots = [Path(r).resolve() for r in roots]
    if not 0 <= index < len(roots):
        raise DataError(f"no evaluation root #{index}")
    path = (roots[index] / rel).resolve()
    if not path.is_relative_to(roots[index]):
        raise DataError(f"{rel!r} is outside the evaluation root")
    return path


def load_bench(out_dir: str | Path) -> dict[str, Any]:
    """The bench document of an `llmops bench` output directory (bench.json)."""
    path = Path(out_dir) / BENCH
    if not path.is_file():
        raise DataError(f"{out_dir}: no bench.json (not an `llmops bench` output directory)")
    return json.loads(path.read_text())


def _matches(row: dict[str, Any], q: str) -> bool:
    q = q.lower()
    return any(q in str(row.get(k) or "").lower() for k in ("prompt", "output", "text")) or any(
        q in str(ref).lower() for ref in row.get("references") or [])


def sample_page(samples: list[dict[str, Any]], *, q: str | None = None, sort: str | None = None,
                page: int = 1, per_page: int = 20) -> tuple[list[dict[str, Any]], int]:
    """(rows of this page, rows matching): text filter `q`, `sort` = ``metric`` or ``-metric`` (score)."""
    rows = [r for r in samples if not q or _matches(r, q)]
    if sort:
        metric, sign = sort.lstrip("-"), (-1.0 if sort.startswith("-") else 1.0)
        scored = [r for r in rows if isinstance((r.get("scores") or {}).get(metric), (int, float))]
        rows = sorted(scored, key=lambda r: sign * r["scores"][metric]) + [r for r in rows if r not in scored]
    return rows[(page - 1) * per_page: page * per_page], len(rows)


def paired_sample_page(a: list[dict[str, Any]], b: list[dict[str, Any]], *, q: str | None = None,
                       metric: str | None = None, only: str | None = None, sort: str | None = None,
                       page: int = 1, per_page: int = 20) -> tuple[list[dict[str, Any]], int]:
    """Samples of two paired runs side by side: {index, prompt, references, a, b, scores_a, scores_b, delta}.

    `only`: ``differ`` (outputs differ), ``better`` / ``worse`` (candidate's `metric` score
    above / below the baseline's); `sort`: ``delta`` or ``-delta`` on `metric`.
    """
    by_index = {r["index"]: r for r in b}
    rows = []
    for ra in a:
        rb = by_index.get(ra["index"])
        if rb is None:
            continue
        sa, sb = ra.get("scores") or {}, rb.get("scores") or {}
        delta = (sb[metric] - sa[metric]) if metric and isinstance(sa.get(metric), (int, float)) \
            and isinstance(sb.get(metric), (int, float)) else None
        row = {"index": ra["index"], "prompt": ra.get("prompt") or ra.get("text") or "",
               "references": ra.get("references") or [], "a": ra.get("output"), "b": rb.get("output"),
               "scores_a": sa, "scores_b": sb, "delta": delta}
        if q and not (_matches(ra, q) or _matches(rb, q)):
            continue
        if only == "differ" and row["a"] == row["b"]:
            continue
        if only in ("better", "worse") and (delta is None or (delta <= 0 if only == "better" else delta >= 0)):
            continue
        rows.append(row)
    if sort in ("delta", "-delta"):
        sign = -1.0 if sort == "-delta" else 1.0  # rows without a delta go last either way
        rows.sort(key=lambda r: (r["delta"] is None, sign * (r["delta"] or 0.0)))
    return rows[(page - 1) * per_page: page * per_page], len(rows)

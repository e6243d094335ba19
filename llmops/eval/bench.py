"""`llmops bench`: evaluate several checkpoints on the same suites and compare them.

Each checkpoint is evaluated with `llmops.eval.api.evaluate` (so the result cache
applies), then tested against the first checkpoint with a paired test per metric. The
output directory holds one eval directory per (suite, checkpoint), ``bench.json``,
``report.md`` and a self-contained ``report.html``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from llmops.errors import UserError
from llmops.eval.api import evaluate, paired_compare
from llmops.eval.report import html_page, markdown


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_")[:60] or "model"


def run_bench(
    model_refs: list[str], suites: list[str | Path], out_dir: str | Path, backend: str = "hf",
    test: str = "bootstrap", labels: list[str] | None = None, **overrides: Any,
) -> dict[str, Any]:
    """Evaluate every model on every suite; returns the bench document (also in bench.json)."""
    if len(model_refs) < 1 or not suites:
        raise UserError("bench needs at least one model reference and one --suite")
    if labels is not None and len(labels) != len(model_refs):
        raise UserError(f"{len(labels)} labels for {len(model_refs)} models")
    labels = labels or model_refs
    out = Path(out_dir)
    bench: dict[str, Any] = {"models": model_refs, "backend": backend, "test": test, "suites": {}}
    for suite in suites:
        rows = []
        for i, (ref, label) in enumerate(zip(model_refs, labels)):
            run_dir = out / Path(suite).stem / f"{i}-{_slug(label)}"
            results = evaluate(ref, suite, run_dir, backend=backend, **dict(overrides))
            rows.append({"label": label, "model": ref, "dir": str(run_dir), "results": results})
        name = rows[0]["results"]["suite"]
        for row in rows[1:]:
            row["comparison"] = paired_compare(rows[0]["dir"], row["dir"], method=test,
                                               seed=rows[0]["results"]["provenance"]["seed"])
        bench["suites"][name] = rows
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench.json").write_text(json.dumps(bench, indent=1, ensure_ascii=False))
    (out / "report.md").write_text(markdown(bench))
    (out / "report.html").write_text(html_page(bench))
    return bench

"""SFT data from the corrected responses of a rating project (the quickstart's SIMULATED corrections).

`export_sft` is the feedback export's ``sft`` format (`llmops.feedback.exports`) restricted to the
project, as prompt/completion JSONL, pinned to a recorded snapshot: the loop trains on exactly
what `llmops feedback export --format sft --project P --sft-style prompt-completion` writes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def export_sft(db_url: str, out: Path, project: str) -> dict[str, Any]:
    """Corrected responses of `project` as SFT rows (prompt → corrected text); returns path, rows, snapshot id."""
    from llmops.feedback.exports.filters import ExportFilters  # the loop's CLI start-up does not pay for it
    from llmops.feedback.exports.run import export

    out.parent.mkdir(parents=True, exist_ok=True)
    result = export(db_url, "sft", out, filters=ExportFilters(project=project), sft_style="prompt-completion")
    return {"path": str(result.path), "snapshot_id": result.snapshot_id, "n_rows": result.n_rows,
            "project": project, "via": "llmops.feedback.exports (format sft)"}

"""SFT data from the corrected responses of a rating project (the quickstart's SIMULATED corrections).

`export_sft` writes prompt/completion JSONL through the feedback export package's ``sft`` format
(`llmops.feedback.exports`, issue 17 item 4) when it is installed. HOOK: until that package is
merged, `_export_from_table` reads the corrections (`llmops.feedback.queries.project_corrections`) and
writes the same columns (prompt, completion, item/response/correction ids), pinned by a content hash;
delete it then.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any


def export_sft(db_url: str, out: Path, project: str) -> dict[str, Any]:
    """Corrected responses of `project` as SFT rows (prompt → corrected text); returns path, rows, snapshot id."""
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        from llmops.feedback.exports.filters import ExportFilters
        from llmops.feedback.exports.run import export
    except ImportError:  # the export package is not merged yet: see the module docstring
        return _export_from_table(db_url, out, project)
    result = export(db_url, "sft", out, filters=ExportFilters(project=project), sft_style="prompt-completion")
    return {"path": str(result.path), "snapshot_id": result.snapshot_id, "n_rows": result.n_rows,
            "project": project, "via": "llmops.feedback.exports (format sft)"}


def _export_from_table(db_url: str, out: Path, project: str) -> dict[str, Any]:
    from llmops.feedback.queries import project_corrections

    data = [{k: row[k] for k in ("prompt", "completion", "item_id", "response_id", "correction_id")}
            for row in project_corrections(db_url, project) if row["completion"].strip()]
    text = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in data)
    tmp = out.with_suffix(out.suffix + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(out)
    digest = hashlib.sha256(json.dumps(["sft", project, data], sort_keys=True).encode()).hexdigest()
    return {"path": str(out), "snapshot_id": f"fbs_{digest[:20]}", "n_rows": len(data), "project": project,
            "via": "corrections table (hook until llmops.feedback.exports is merged)"}

"""SFT data from the corrected responses of a rating project (the quickstart's SIMULATED corrections).

`export_sft` writes prompt/completion JSONL through the feedback export package's ``sft`` format
(`llmops.feedback.exports`, issue 17 item 4) when it is installed. HOOK: until that package is
merged, `_export_from_table` reads the corrections table directly and writes the same columns
(prompt, completion, item/response/correction ids), pinned by a content hash; delete it then.
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
    from sqlalchemy import select

    from llmops.db.engine import read_only_session
    from llmops.feedback.tables import Correction, Item, Project, ProjectItem

    with read_only_session(db_url, snapshot=True) as s, s.begin():
        rows = s.execute(
            select(Item.prompt, Correction.text, Correction.item_id, Correction.response_id, Correction.id)
            .join(Item, Item.id == Correction.item_id)
            .join(ProjectItem, ProjectItem.item_id == Correction.item_id)
            .join(Project, Project.id == ProjectItem.project_id)
            .where(Project.name == project)
            .order_by(Correction.item_id, Correction.id)
        ).all()
    data = [{"prompt": p, "completion": t, "item_id": i, "response_id": r, "correction_id": c}
            for p, t, i, r, c in rows if t.strip()]
    text = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in data)
    tmp = out.with_suffix(out.suffix + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(out)
    digest = hashlib.sha256(json.dumps(["sft", project, data], sort_keys=True).encode()).hexdigest()
    return {"path": str(out), "snapshot_id": f"fbs_{digest[:20]}", "n_rows": len(data), "project": project,
            "via": "corrections table (hook until llmops.feedback.exports is merged)"}

"""Feedback exports every trainer reads (docs/feedback.md, "Exports").

- `formats`: the rows of each format (TRL preference, conversational, KTO, SFT, reward);
- `pairs`: preference pairs, their margin scale and agreement;
- `filters`: project, time range, model, raters, agreement;
- `source`: the filtered read; `build`: rows + provenance of one export;
- `snapshots`: pinned snapshot ids and stored rows; `writers`: JSONL, Parquet, `datasets` folders;
- `run`: `export(...)` and `write_snapshot(...)` end to end.
"""

from llmops.feedback.exports.filters import ExportFilters, make_filters
from llmops.feedback.exports.formats import FORMATS
from llmops.feedback.exports.run import ExportResult, export, write_snapshot
from llmops.feedback.exports.writers import OUTPUTS

__all__ = ["FORMATS", "OUTPUTS", "ExportFilters", "ExportResult", "export", "make_filters", "write_snapshot"]

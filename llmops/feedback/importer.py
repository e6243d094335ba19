"""`llmops feedback import ITEMS.jsonl`: load items to be rated, validated line by line."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import ValidationError

from llmops.errors import DataError
from llmops.feedback.schemas import ItemIn


def read_items_jsonl(path: str | Path) -> list[ItemIn]:
    """Parse and validate every line first, so a bad line N stores nothing (error names path:N and the field)."""
    items = []
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p}: no such file")
    with p.open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                items.append(ItemIn.model_validate(json.loads(line)))
            except json.JSONDecodeError as exc:
                raise DataError(f"{p}:{n}: not valid JSON ({exc.msg})") from exc
            except ValidationError as exc:
                err = exc.errors()[0]
                field = ".".join(str(x) for x in err["loc"]) or "line"
                raise DataError(f"{p}:{n}: {field}: {err['msg']}") from exc
    return items


def import_items_jsonl(path: str | Path, db_url: str | None = None) -> tuple[int, list[int]]:
    """Store all items of the file in one transaction; returns (count, item ids)."""
    from llmops.db import session_factory
    from llmops.db.migrate import prepare
    from llmops.feedback.store import create_item

    items = read_items_jsonl(path)
    prepare(db_url, migrate=False, create_if_empty=True)  # never upgrades an existing database
    with session_factory(db_url)() as session, session.begin():
        ids = [create_item(session, item).item_id for item in items]
    return len(ids), ids

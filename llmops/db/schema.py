"""Create the schema on first use, cheaply: skip alembic when the branch head is applied.

Each store passes the head of its own alembic branch; `db` knows no store.
"""

from __future__ import annotations

import threading

from sqlalchemy.exc import SQLAlchemyError

from llmops.db import get_engine
from llmops.db import upgrade as db_upgrade

_upgraded: set[tuple[str, str]] = set()
_upgraded_lock = threading.Lock()


def _at_revision(url: str, head: str) -> bool:
    """Whether the database already carries `head` (a cheap check that skips alembic)."""
    try:
        with get_engine(url).connect() as conn:
            return head in conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalars().all()
    except SQLAlchemyError:
        return False


def ensure_schema(url: str, head: str) -> None:
    """Run the migrations once per process, and only when `head` is not applied yet."""
    with _upgraded_lock:
        if (url, head) not in _upgraded:
            if not _at_revision(url, head):
                db_upgrade(url)
            _upgraded.add((url, head))


def ensure_all(url: str) -> None:
    """Bring every store's schema up to date once per process (for cross-store readers)."""
    ensure_schema(url, head="*all*")  # never a revision id: always runs the upgrade the first time

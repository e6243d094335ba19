"""One database for every store (feedback, registry, monitoring): engine, base, migrations."""

from llmops.db.base import Base
from llmops.db.engine import get_engine, session_factory, upgrade

__all__ = ["Base", "get_engine", "session_factory", "upgrade"]

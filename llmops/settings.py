"""Process-wide settings read from the environment (one place, so every subsystem agrees).

- ``LLMOPS_HOME``: cache and embedded-store root (default ``~/.cache/llmops``).
- ``LLMOPS_DATABASE_URL``: the one database shared by the feedback store, the registry
  and monitoring (default: SQLite at ``$LLMOPS_HOME/llmops.db``).
- ``LLMOPS_ALLOW_DOWNLOADS``: set to 1 to let model references fetch from the HF Hub;
  offline is the default.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TypeVar

N = TypeVar("N", int, float)


def llmops_home() -> Path:
    """Root of caches (built-in models, eval results) and the embedded database."""
    home = Path(os.environ.get("LLMOPS_HOME", Path.home() / ".cache" / "llmops")).expanduser()
    home.mkdir(parents=True, exist_ok=True)
    return home


def database_url(explicit: str | None = None) -> str:
    """The database URL: ``--db`` beats ``LLMOPS_DATABASE_URL`` beats embedded SQLite."""
    if explicit:
        return explicit
    env = os.environ.get("LLMOPS_DATABASE_URL")
    if env:
        return env
    return f"sqlite:///{llmops_home() / 'llmops.db'}"


def downloads_allowed() -> bool:
    """Whether model references may reach the HF Hub (off unless LLMOPS_ALLOW_DOWNLOADS=1)."""
    return os.environ.get("LLMOPS_ALLOW_DOWNLOADS", "0").lower() in {"1", "true", "yes"}


def apply_offline_defaults() -> None:
    """Make HF libraries offline and quiet unless the user said otherwise."""
    if not downloads_allowed():
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if os.environ.get("LLMOPS_VERBOSE", "0") not in {"1", "true"}:
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")


def env_number(name: str, default: N | None, kind: type[N] = int,
               error: type[Exception] = ValueError) -> N | None:
    """The number in environment variable `name` (`default` when unset or empty). A value that is
    not one raises `error` (callers pass `llmops.errors.ConfigError`) with a message naming the
    variable, not a bare "could not convert" from deep inside start-up."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return kind(raw)
    except ValueError:
        raise error(f"{name} must be {'an integer' if kind is int else 'a number'}, got {raw!r}") from None

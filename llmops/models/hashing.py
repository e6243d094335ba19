"""The one model hash: what the registry stores for a version and the harness records for a run.

``tree_digest(dir)`` is sha256 over (relative path, NUL, content, NUL) of every model
file in sorted order. Model files are the regular files under the directory whose path
has no hidden component (``.git/``, ``.cache/``, ``.llmops-*``): those are tooling
state, not the model. Symlinks are followed (an HF cache snapshot is a folder of links
into its ``blobs/``), so a snapshot and a plain copy of it hash the same.

``model_hash(dir)`` is the same digest, remembered in ``$LLMOPS_HOME/cache/model-hashes``
keyed by the folder's real path and each file's size, mtime and inode: a large checkpoint
is hashed once, and nothing is ever written inside a model folder (registered versions
are read-only; an HF cache belongs to the hub library).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from llmops.errors import ModelRefError
from llmops.settings import llmops_home

CHUNK = 1 << 20


def is_hidden(rel: Path) -> bool:
    return any(part.startswith(".") for part in rel.parts)


def model_files(root: Path) -> list[Path]:
    """Model files of `root` (following symlinks), sorted by relative posix path."""
    root = Path(root)
    out = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for fname in filenames:
            path = Path(dirpath) / fname
            if not fname.startswith(".") and path.is_file():
                out.append(path)
    return sorted(out, key=lambda p: p.relative_to(root).as_posix())


def iter_chunks(path: Path, chunk: int = CHUNK) -> Iterator[bytes]:
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            yield block


def file_sha256(path: Path) -> str:
    """sha256 of one file, read in 1 MiB chunks (never the whole file in memory)."""
    digest = hashlib.sha256()
    for block in iter_chunks(path):
        digest.update(block)
    return digest.hexdigest()


class TreeHasher:
    """Incremental form of `tree_digest`, for callers that stream files (copy while hashing)."""

    def __init__(self) -> None:
        self._digest = hashlib.sha256()
        self.n_bytes = 0

    def begin(self, rel: str) -> None:
        self._digest.update(rel.encode() + b"\0")

    def update(self, block: bytes) -> None:
        self._digest.update(block)
        self.n_bytes += len(block)

    def end(self) -> None:
        self._digest.update(b"\0")

    def hexdigest(self) -> str:
        return self._digest.hexdigest()


def tree_digest(root: str | Path) -> tuple[str, int]:
    """(sha256, total bytes) of the model files of a directory."""
    root = Path(root)
    hasher = TreeHasher()
    for path in model_files(root):
        hasher.begin(path.relative_to(root).as_posix())
        for block in iter_chunks(path):
            hasher.update(block)
        hasher.end()
    return hasher.hexdigest(), hasher.n_bytes


def _cache_dir() -> Path:
    return llmops_home() / "cache" / "model-hashes"


def _stamp(root: Path, files: list[Path]) -> list[list]:
    out = []
    for p in files:
        st = p.stat()
        out.append([p.relative_to(root).as_posix(), st.st_size, st.st_mtime_ns, st.st_ino])
    return out


def model_hash(path: str | Path) -> str:
    """The model hash of a directory (`tree_digest`), cached under $LLMOPS_HOME."""
    root = Path(path)
    if not root.is_dir():
        raise ModelRefError(f"{root}: not a model directory")
    files = model_files(root)
    if not files:
        raise ModelRefError(f"{root}: no model files to hash")
    real = str(root.resolve())
    stamp = _stamp(root, files)
    cache = _cache_dir() / (hashlib.sha256(real.encode()).hexdigest()[:32] + ".json")
    try:
        cached = json.loads(cache.read_text())
        if cached.get("path") == real and cached.get("stamp") == stamp:
            return cached["sha256"]
    except (OSError, ValueError):
        pass
    digest, _ = tree_digest(root)
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=cache.parent, suffix=".tmp")
        with os.fdopen(fd, "w") as fh:
            json.dump({"path": real, "stamp": stamp, "sha256": digest}, fh)
        os.replace(tmp, cache)
    except OSError:
        pass  # an unwritable home only costs a re-hash next time
    return digest

"""The registry-managed artifact store.

Artifacts are *copied* into ``<root>/<model>/<version>/`` (root: ``$LLMOPS_REGISTRY_ROOT``
or ``$LLMOPS_HOME/registry/artifacts``) and the database stores only the relative URI.
A path supplied by a client is read once, at registration, and never served back:
MLflow's path-traversal CVEs came from serving client-supplied artifact locations.
Every resolution re-checks that the URI stays inside the root.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

from llmops.errors import UserError
from llmops.settings import llmops_home

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$")
_STAGING = ".staging"


class ArtifactError(UserError):
    """An artifact that cannot be stored or resolved safely."""


def validate_name(name: str) -> str:
    """Model names become directory names: letters, digits, `_ . -`; no `..`."""
    if not isinstance(name, str) or not NAME_RE.match(name) or ".." in name:
        raise ArtifactError(
            f"invalid model name {name!r}: use 1-128 letters, digits, '_', '.', '-' (starting with a letter or digit)"
        )
    return name


def default_root() -> Path:
    env = os.environ.get("LLMOPS_REGISTRY_ROOT")
    return Path(env).expanduser() if env else llmops_home() / "registry" / "artifacts"


@dataclass(frozen=True)
class StoredArtifact:
    uri: str  # relative to the store root, e.g. "my-model/3"
    sha256: str
    n_bytes: int


def tree_digest(root: Path) -> tuple[str, int]:
    """sha256 over (relative path, content) of every file, in sorted order; and total bytes."""
    digest = hashlib.sha256()
    total = 0
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = path.relative_to(root).as_posix()
        digest.update(rel.encode() + b"\0")
        with path.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
                total += len(chunk)
        digest.update(b"\0")
    return digest.hexdigest(), total


def file_digests(root: Path) -> dict[str, str]:
    """sha256 per relative file path (for `registry diff`)."""
    out = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        out[path.relative_to(root).as_posix()] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def _check_source(src: Path) -> Path:
    if not src.exists():
        raise ArtifactError(f"artifact not found: {src}")
    if not src.is_dir():
        raise ArtifactError(f"artifact must be a directory: {src}")
    real = src.resolve()
    for path in src.rglob("*"):
        if path.is_symlink():
            target = path.resolve()
            if not target.is_relative_to(real):
                raise ArtifactError(f"artifact {src} contains a symlink leaving the directory: {path} -> {target}")
    if not any(p.is_file() for p in src.rglob("*")):
        raise ArtifactError(f"artifact directory is empty: {src}")
    return real


class ArtifactStore:
    """Copies directories in, hands back paths that are guaranteed to lie inside `root`."""

    def __init__(self, root: str | Path | None = None) -> None:
        self.root = Path(root).expanduser() if root else default_root()
        self.root.mkdir(parents=True, exist_ok=True)
        self._real_root = self.root.resolve()

    def stage(self, src: str | Path) -> tuple[Path, str, int]:
        """Copy `src` into a private staging directory; return it with its digest and size.

        Staging happens before any database transaction so that the transaction that
        allocates the version number stays short.
        """
        real = _check_source(Path(src).expanduser())
        staging = self.root / _STAGING / uuid.uuid4().hex
        staging.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(real, staging, symlinks=False)
        digest, n_bytes = tree_digest(staging)
        return staging, digest, n_bytes

    def commit(self, staging: Path, name: str, version: int, sha256: str, n_bytes: int) -> StoredArtifact:
        """Move a staged copy to its final place (atomic rename on one filesystem).

        Runs inside the registering transaction, so it must stay cheap: no re-hashing
        (the staging directory is private to this registration, its digest still holds).
        """
        uri = f"{validate_name(name)}/{int(version)}"
        final = self.path(uri, must_exist=False)
        if final.exists():
            # A previous registration of this number crashed before its commit: the number
            # was never handed out (its transaction rolled back), so the leftover is garbage.
            shutil.rmtree(final)
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(staging, final)
        return StoredArtifact(uri, sha256, n_bytes)

    def copy_into(self, src: str | Path, uri: str) -> StoredArtifact:
        """Copy a directory (e.g. eval results) to `uri` inside the store."""
        staging, _, _ = self.stage(src)
        final = self.path(uri, must_exist=False)
        final.parent.mkdir(parents=True, exist_ok=True)
        if final.exists():
            shutil.rmtree(final)
        os.replace(staging, final)
        digest, n_bytes = tree_digest(final)
        return StoredArtifact(uri, digest, n_bytes)

    def discard(self, path: Path) -> None:
        shutil.rmtree(path, ignore_errors=True)

    def remove(self, uri: str) -> None:
        shutil.rmtree(self.path(uri, must_exist=False), ignore_errors=True)

    def path(self, uri: str, must_exist: bool = True) -> Path:
        """Absolute path of a stored URI; refuses anything that would leave the root."""
        if not isinstance(uri, str) or not uri or uri.startswith(("/", "\\")) or "\\" in uri or ":" in uri:
            raise ArtifactError(f"refusing artifact uri {uri!r}: not a relative store path")
        parts = uri.split("/")
        if any(p in ("", ".", "..") for p in parts):
            raise ArtifactError(f"refusing artifact uri {uri!r}: path traversal")
        candidate = (self.root / uri).resolve()
        if not candidate.is_relative_to(self._real_root):
            raise ArtifactError(f"refusing artifact uri {uri!r}: resolves outside the artifact store")
        if must_exist and not candidate.is_dir():
            raise ArtifactError(f"artifact {uri!r} is missing from the store at {self.root}")
        return candidate

    def verify(self, uri: str, sha256: str) -> bool:
        digest, _ = tree_digest(self.path(uri))
        return digest == sha256

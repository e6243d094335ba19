"""The registry-managed artifact store on a local filesystem.

One artifact root belongs to exactly one registry: the root carries a marker
(``.llmops-registry.json``) with the id stored in that registry's database, and a
store refuses a root whose marker names another registry (two databases sharing a root
would otherwise hand out each other's folders). Inside the root every path is namespaced
by kind: ``models/NAME/VERSION`` (read-only once committed), ``evals/NAME/VERSION/ID``,
``cards/NAME/VERSION/README.md`` and the private ``.staging/``. Nothing outside those
folders is ever deleted, and every resolution re-checks that a URI stays inside the root
(MLflow's path-traversal CVEs came from serving client-supplied locations).

The default root is ``$LLMOPS_REGISTRY_ROOT``, else ``$LLMOPS_HOME/registry/artifacts/<registry id>``
(so two databases never meet in the default location). `llmops.registry.remote` stores
the same layout in object storage.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from llmops.errors import UserError
from llmops.models.hashing import CHUNK, TreeHasher, file_sha256, is_hidden, model_files, tree_digest
from llmops.settings import llmops_home

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$")
MARKER = ".llmops-registry.json"
STAGING = ".staging"
KINDS = ("models", "evals", "cards")
_ZEROS = bytes(CHUNK)


class ArtifactError(UserError):
    """An artifact that cannot be stored or resolved safely."""


def validate_name(name: str) -> str:
    """Model names become directory names: letters, digits, `_ . -`; no `..`."""
    if not isinstance(name, str) or not NAME_RE.match(name) or ".." in name:
        raise ArtifactError(
            f"invalid model name {name!r}: use 1-128 letters, digits, '_', '.', '-' (starting with a letter or digit)"
        )
    return name


def configured_root() -> str | None:
    return os.environ.get("LLMOPS_REGISTRY_ROOT") or None


def default_root(registry_id: str) -> str:
    """$LLMOPS_REGISTRY_ROOT, else a folder of $LLMOPS_HOME private to this registry."""
    return configured_root() or str(llmops_home() / "registry" / "artifacts" / registry_id)


def model_uri(name: str, version: int) -> str:
    return f"models/{validate_name(name)}/{int(version)}"


def card_uri(name: str, version: int) -> str:
    return f"cards/{validate_name(name)}/{int(version)}/README.md"


@dataclass(frozen=True)
class StoredArtifact:
    uri: str  # relative to the store root, e.g. "models/my-model/3"
    sha256: str
    n_bytes: int


@dataclass(frozen=True)
class Staged:
    """A private, hashed copy waiting for its version number."""

    location: str
    sha256: str
    n_bytes: int


def check_uri(uri: str) -> str:
    """Refuse absolute, traversing or un-namespaced URIs."""
    if not isinstance(uri, str) or not uri or uri.startswith(("/", "\\")) or "\\" in uri or ":" in uri:
        raise ArtifactError(f"refusing artifact uri {uri!r}: not a relative store path")
    parts = uri.split("/")
    if any(p in ("", ".", "..") for p in parts):
        raise ArtifactError(f"refusing artifact uri {uri!r}: path traversal")
    return uri


def owned_uri(uri: str) -> str:
    """A URI this registry may delete: inside one of its namespaced folders, below the kind."""
    check_uri(uri)
    parts = uri.split("/")
    if parts[0] not in KINDS or len(parts) < 3:
        raise ArtifactError(f"refusing to delete {uri!r}: not inside this registry's models/, evals/ or cards/")
    return uri


def _hf_cache_repo(real: Path) -> Path | None:
    """The repo folder (``models--org--name``) when `real` is an HF cache snapshot, else None."""
    if real.parent.name == "snapshots" and (real.parent.parent / "blobs").is_dir():
        return real.parent.parent
    return None


def check_source(src: Path) -> Path:
    """Validate a directory to register; symlinks may only point inside it (or into its HF cache repo)."""
    if not src.exists():
        raise ArtifactError(f"artifact not found: {src}")
    if not src.is_dir():
        raise ArtifactError(f"artifact must be a directory: {src}")
    real = src.resolve()
    allowed = _hf_cache_repo(real) or real
    for dirpath, dirnames, filenames in os.walk(real):
        for entry in dirnames + filenames:
            path = Path(dirpath) / entry
            if not path.is_symlink():
                continue
            target = path.resolve()
            if path.is_dir():
                raise ArtifactError(f"artifact {src} contains a symlinked directory: {path} -> {target}")
            if not target.is_relative_to(allowed):
                raise ArtifactError(f"artifact {src} contains a symlink leaving the directory: {path} -> {target}")
            if not target.is_file():
                raise ArtifactError(f"artifact {src} contains a dangling symlink: {path} -> {target}")
    if not model_files(real):
        raise ArtifactError(f"artifact directory has no (non-hidden) files: {src}")
    return real


def copy_hashing(real: Path, dest: Path) -> tuple[str, int]:
    """Copy the model files of `real` to `dest` in one pass, hashing what is read.

    Runs of zeros are skipped with a seek, so a sparse file stays sparse (a 2 GiB
    placeholder costs no disk). Symlinks are resolved: the copy holds plain files.
    """
    hasher = TreeHasher()
    for path in model_files(real):
        rel = path.relative_to(real).as_posix()
        out = dest / rel
        out.parent.mkdir(parents=True, exist_ok=True)
        hasher.begin(rel)
        size = 0
        with open(path, "rb") as fi, open(out, "wb") as fo:
            while block := fi.read(CHUNK):
                hasher.update(block)
                size += len(block)
                if block == _ZEROS[: len(block)]:
                    fo.seek(len(block), os.SEEK_CUR)
                else:
                    fo.write(block)
            fo.truncate(size)
        hasher.end()
    return hasher.hexdigest(), hasher.n_bytes


def make_read_only(root: Path) -> None:
    for dirpath, dirnames, filenames in os.walk(root):
        for fname in filenames:
            os.chmod(Path(dirpath) / fname, 0o444)
    for dirpath, _, _ in sorted(os.walk(root), key=lambda t: -len(t[0])):
        os.chmod(dirpath, 0o555)


def _make_writable(root: Path) -> None:
    for dirpath, _, _ in os.walk(root):
        os.chmod(dirpath, stat.S_IRWXU)


def _rmtree(path: Path) -> None:
    if path.exists():
        _make_writable(path)
        shutil.rmtree(path, ignore_errors=True)


def read_marker(text: str, where: str) -> dict:
    try:
        data = json.loads(text)
        if isinstance(data, dict) and isinstance(data.get("registry_id"), str):
            return data
    except ValueError:
        pass
    raise ArtifactError(f"{where}: unreadable registry marker; it is not an llmops artifact root")


def foreign_root_error(root: str, owner: str, registry_id: str) -> ArtifactError:
    return ArtifactError(
        f"artifact root {root} belongs to registry {owner}, not to this database's registry {registry_id}: "
        "two databases must not share an artifact root (set LLMOPS_REGISTRY_ROOT to a folder of this registry's own)"
    )


def marker_payload(registry_id: str) -> str:
    return json.dumps({"registry_id": registry_id, "claimed_at": datetime.now(timezone.utc).isoformat()})


class ArtifactStore:
    """A local artifact root owned by one registry; hands back paths guaranteed inside it."""

    remote = False

    def __init__(self, root: str | Path, registry_id: str) -> None:
        self.root = Path(root).expanduser()
        self.registry_id = registry_id
        self.root.mkdir(parents=True, exist_ok=True)
        self._real_root = self.root.resolve()
        self._claim()

    def __str__(self) -> str:
        return str(self.root)

    def _claim(self) -> None:
        marker = self.root / MARKER
        if not marker.exists():
            others = [p.name for p in self.root.iterdir() if p.name != STAGING]
            if others:
                raise ArtifactError(
                    f"artifact root {self.root} is not empty ({', '.join(sorted(others)[:5])}) and carries no "
                    f"registry marker: refusing to share it; point LLMOPS_REGISTRY_ROOT at an empty folder"
                )
            tmp = self.root / f".marker-{uuid.uuid4().hex}"
            tmp.write_text(marker_payload(self.registry_id))
            try:
                os.link(tmp, marker)  # atomic and exclusive, with the content already in place
            except FileExistsError:
                pass  # another registry (or process) won the race: read whose it is below
            except OSError:  # no hard links here (some network filesystems): exclusive create
                try:
                    fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
                    with os.fdopen(fd, "w") as fh:
                        fh.write(tmp.read_text())
                except FileExistsError:
                    pass
            finally:
                tmp.unlink(missing_ok=True)
        owner = read_marker(marker.read_text(), str(marker))["registry_id"]
        if owner != self.registry_id:
            raise foreign_root_error(str(self.root), owner, self.registry_id)

    # --- writing ------------------------------------------------------------------
    def stage(self, src: str | Path) -> Staged:
        """Copy `src` into a private staging folder in one hashing pass (before any transaction)."""
        real = check_source(Path(src).expanduser())
        staging = self.root / STAGING / uuid.uuid4().hex
        staging.mkdir(parents=True)
        try:
            digest, n_bytes = copy_hashing(real, staging)
        except BaseException:
            _rmtree(staging)
            raise
        return Staged(str(staging), digest, n_bytes)

    def commit(self, staged: Staged, name: str, version: int) -> StoredArtifact:
        """Move a staged copy to ``models/NAME/VERSION`` (atomic rename) and make it read-only.

        Runs inside the registering transaction, so no re-hashing: the staging folder is
        private to this registration. A leftover at the final place can only come from a
        registration of this very registry that crashed before its commit (the root is
        ours and the number was never handed out), so it is removed.
        """
        uri = model_uri(name, version)
        final = self.path(uri, must_exist=False)
        _rmtree(final)
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(staged.location, final)
        make_read_only(final)
        return StoredArtifact(uri, staged.sha256, staged.n_bytes)

    def discard(self, staged: Staged) -> None:
        path = Path(staged.location)
        if path.parent == self.root / STAGING:
            _rmtree(path)

    def copy_into(self, src: str | Path, uri: str) -> StoredArtifact:
        """Copy a directory (e.g. eval results) to `uri` inside the store."""
        owned_uri(uri)
        staged = self.stage(src)
        final = self.path(uri, must_exist=False)
        _rmtree(final)
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(staged.location, final)
        return StoredArtifact(uri, staged.sha256, staged.n_bytes)

    def remove(self, uri: str) -> None:
        _rmtree(self.path(owned_uri(uri), must_exist=False))

    def write_text(self, uri: str, text: str) -> None:
        """Atomically (re)write a small file, e.g. a model card."""
        path = self.path(owned_uri(uri), must_exist=False)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)

    def read_text(self, uri: str) -> str | None:
        path = self.path(check_uri(uri), must_exist=False)
        return path.read_text(encoding="utf-8") if path.is_file() else None

    # --- reading ------------------------------------------------------------------
    def path(self, uri: str, must_exist: bool = True) -> Path:
        """Absolute path of a stored URI; refuses anything that would leave the root."""
        check_uri(uri)
        candidate = (self.root / uri).resolve()
        if not candidate.is_relative_to(self._real_root):
            raise ArtifactError(f"refusing artifact uri {uri!r}: resolves outside the artifact store")
        if must_exist and not candidate.exists():
            raise ArtifactError(f"artifact {uri!r} is missing from the store at {self.root}")
        return candidate

    def materialize(self, uri: str, sha256: str) -> Path:
        """A local directory holding the artifact (here: the stored folder itself)."""
        return self.path(uri)

    def verify(self, uri: str, sha256: str) -> bool:
        digest, _ = tree_digest(self.path(uri))
        return digest == sha256

    def file_digests(self, uri: str, sha256: str) -> dict[str, str]:
        """sha256 per relative file path, streamed (for `registry diff`)."""
        root = self.materialize(uri, sha256)
        return {p.relative_to(root).as_posix(): file_sha256(p) for p in model_files(root)}


__all__ = [
    "ArtifactError", "ArtifactStore", "Staged", "StoredArtifact", "card_uri", "check_source", "default_root",
    "is_hidden", "model_uri", "validate_name",
]

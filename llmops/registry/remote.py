"""The artifact store in object storage (any fsspec URL: ``s3://bucket/prefix``, ``gs://``, ``memory://``).

Same layout and ownership rule as the local store (`llmops.registry.artifacts`). Object
stores have no rename, so a write is *staged then committed*: files are uploaded under
``.staging/ID/`` while being hashed, copied server-side to their final prefix, and a
commit manifest (``.llmops-commit.json``: sha256, sizes) is written last. A folder
without its manifest is an interrupted upload and is never served. Reads download into
``$LLMOPS_HOME/registry/cache/<registry id>/`` and are verified against the hash in the
database before the folder appears (an atomic rename), so a corrupted or tampered object
is refused, not loaded. S3 endpoints come from the usual variables (``AWS_ENDPOINT_URL``,
``AWS_ACCESS_KEY_ID``...), read by s3fs/botocore.

One weakness stays: claiming a fresh root is check-then-write (S3 has no portable
exclusive create), so two registries claiming the *same empty* root in the same instant
could both believe they won; every later open re-reads the marker and refuses a mismatch.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import uuid
from pathlib import Path

from llmops.models.hashing import CHUNK, TreeHasher, model_files, tree_digest
from llmops.registry.artifacts import (
    MARKER,
    STAGING,
    ArtifactError,
    Staged,
    StoredArtifact,
    check_source,
    check_uri,
    foreign_root_error,
    make_read_only,
    marker_payload,
    model_uri,
    owned_uri,
    read_marker,
)
from llmops.settings import llmops_home

COMMIT = ".llmops-commit.json"


def _rmtree(path: Path) -> None:
    for dirpath, _, _ in os.walk(path):
        os.chmod(dirpath, 0o700)
    shutil.rmtree(path, ignore_errors=True)


class FsspecArtifactStore:
    """An artifact root in object storage, with a verified local download cache."""

    remote = True

    def __init__(self, root: str, registry_id: str) -> None:
        import fsspec

        self.url = root.rstrip("/")
        self.registry_id = registry_id
        try:
            self.fs, self.base = fsspec.core.url_to_fs(self.url)
        except (ImportError, ValueError) as exc:
            raise ArtifactError(f"artifact root {root}: {exc} (install the fsspec backend, e.g. s3fs)") from None
        self.cache = llmops_home() / "registry" / "cache" / registry_id
        self._claim()

    def __str__(self) -> str:
        return self.url

    def _key(self, uri: str) -> str:
        return f"{self.base}/{uri}"

    def _claim(self) -> None:
        marker = self._key(MARKER)
        self.fs.invalidate_cache()
        if not self.fs.exists(marker):
            listing = [p for p in (self.fs.ls(self.base, detail=False) if self.fs.exists(self.base) else [])
                       if not p.rstrip("/").endswith(STAGING)]
            if listing:
                raise ArtifactError(f"artifact root {self.url} is not empty and carries no registry marker: "
                                    "refusing to share it; point LLMOPS_REGISTRY_ROOT at an empty prefix")
            self.fs.pipe_file(marker, marker_payload(self.registry_id).encode())
            self.fs.invalidate_cache()
        owner = read_marker(self.fs.cat_file(marker).decode(), f"{self.url}/{MARKER}")["registry_id"]
        if owner != self.registry_id:
            raise foreign_root_error(self.url, owner, self.registry_id)

    # --- writing ------------------------------------------------------------------
    def _upload(self, real: Path, prefix: str) -> Staged:
        hasher, sizes = TreeHasher(), {}
        for path in model_files(real):
            rel = path.relative_to(real).as_posix()
            hasher.begin(rel)
            with open(path, "rb") as fi, self.fs.open(f"{prefix}/{rel}", "wb") as fo:
                while block := fi.read(CHUNK):
                    hasher.update(block)
                    fo.write(block)
            hasher.end()
            sizes[rel] = path.stat().st_size
        manifest = {"sha256": hasher.hexdigest(), "n_bytes": hasher.n_bytes, "files": sizes}
        self.fs.pipe_file(f"{prefix}/{COMMIT}", json.dumps(manifest).encode())
        return Staged(prefix, manifest["sha256"], manifest["n_bytes"])

    def stage(self, src: str | Path) -> Staged:
        """Upload `src` under a private staging prefix, hashing as it streams."""
        real = check_source(Path(src).expanduser())
        prefix = self._key(f"{STAGING}/{uuid.uuid4().hex}")
        try:
            return self._upload(real, prefix)
        except BaseException:
            self.fs.rm(prefix, recursive=True) if self.fs.exists(prefix) else None
            raise

    def _publish(self, staged: Staged, uri: str) -> StoredArtifact:
        """Copy a staged upload to `uri`: data objects first, the commit manifest last."""
        final = self._key(uri)
        if self.fs.exists(final):
            self.fs.rm(final, recursive=True)  # an interrupted commit of this very registry
        manifest = json.loads(self.fs.cat_file(f"{staged.location}/{COMMIT}"))
        for rel in manifest["files"]:
            self.fs.copy(f"{staged.location}/{rel}", f"{final}/{rel}")
        self.fs.copy(f"{staged.location}/{COMMIT}", f"{final}/{COMMIT}")
        self.discard(staged)
        return StoredArtifact(uri, staged.sha256, staged.n_bytes)

    def commit(self, staged: Staged, name: str, version: int) -> StoredArtifact:
        return self._publish(staged, model_uri(name, version))

    def discard(self, staged: Staged) -> None:
        if staged.location.startswith(self._key(STAGING) + "/") and self.fs.exists(staged.location):
            self.fs.rm(staged.location, recursive=True)

    def copy_into(self, src: str | Path, uri: str) -> StoredArtifact:
        owned_uri(uri)
        return self._publish(self.stage(src), uri)

    def remove(self, uri: str) -> None:
        key = self._key(owned_uri(uri))
        self.fs.invalidate_cache()
        if self.fs.exists(key):
            self.fs.rm(key, recursive=True)
        local = self.cache / uri
        if local.exists():
            _rmtree(local) if local.is_dir() else local.unlink()

    def write_text(self, uri: str, text: str) -> None:
        self.fs.pipe_file(self._key(owned_uri(uri)), text.encode("utf-8"))  # one PUT: atomic per object

    def read_text(self, uri: str) -> str | None:
        key = self._key(check_uri(uri))
        self.fs.invalidate_cache()
        return self.fs.cat_file(key).decode("utf-8") if self.fs.exists(key) else None

    # --- reading ------------------------------------------------------------------
    def path(self, uri: str, must_exist: bool = False) -> Path:
        """Where `uri` is (or will be) cached locally."""
        check_uri(uri)
        return self.cache / uri

    def _manifest(self, uri: str) -> dict:
        key = f"{self._key(check_uri(uri))}/{COMMIT}"
        self.fs.invalidate_cache()
        if not self.fs.exists(key):
            raise ArtifactError(f"artifact {uri!r} is missing from {self.url} (or its upload never committed)")
        return json.loads(self.fs.cat_file(key))

    def materialize(self, uri: str, sha256: str) -> Path:
        """A local, read-only copy of `uri`, downloaded once and verified against `sha256`."""
        final = self.path(uri)
        if final.is_dir():
            return final
        manifest = self._manifest(uri)
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".download-", dir=final.parent))
        try:
            for rel in manifest["files"]:
                out = tmp / rel
                out.parent.mkdir(parents=True, exist_ok=True)
                self.fs.get_file(f"{self._key(uri)}/{rel}", str(out))
            digest, _ = tree_digest(tmp)
            if digest != sha256:
                raise ArtifactError(f"download of {self.url}/{uri} has sha256 {digest[:12]}…, the registry recorded "
                                    f"{sha256[:12]}…: the stored object was changed; refusing to use it")
            make_read_only(tmp)
            try:
                os.replace(tmp, final)
            except OSError:  # another process finished the same download first
                if not final.is_dir():
                    raise
        finally:
            if tmp.exists():
                _rmtree(tmp)
        return final

    def _stream_digest(self, uri: str) -> tuple[str, dict[str, str]]:
        import hashlib

        manifest = self._manifest(uri)
        hasher, per_file = TreeHasher(), {}
        for rel in sorted(manifest["files"]):
            hasher.begin(rel)
            one = hashlib.sha256()
            with self.fs.open(f"{self._key(uri)}/{rel}", "rb") as fh:
                while block := fh.read(CHUNK):
                    hasher.update(block)
                    one.update(block)
            hasher.end()
            per_file[rel] = one.hexdigest()
        return hasher.hexdigest(), per_file

    def verify(self, uri: str, sha256: str) -> bool:
        """Re-hash the stored objects themselves (streamed; the local cache is not trusted here)."""
        return self._stream_digest(uri)[0] == sha256

    def file_digests(self, uri: str, sha256: str) -> dict[str, str]:
        return self._stream_digest(uri)[1]

"""Model references: one string names a model everywhere a model is accepted.

- ``builtin:tiny`` — a built-in model, materialised locally on first use (no download);
- ``registry:NAME@ALIAS`` or ``registry:NAME/VERSION`` — a version in the model registry;
- a local directory (HF format: full weights or a LoRA adapter);
- a HF hub id (``Qwen/Qwen2.5-0.5B``) — from the local HF cache; downloads only when
  ``LLMOPS_ALLOW_DOWNLOADS=1``.

`resolve_model` turns any of them into a local directory; `model_hash` fingerprints it.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from llmops.errors import ModelRefError
from llmops.settings import downloads_allowed

RefKind = Literal["builtin", "registry", "path", "hub"]
_REGISTRY_RE = re.compile(r"^registry:(?P<name>[A-Za-z0-9][\w.\-]*)(?:@(?P<alias>[\w.\-]+)|/(?P<version>\d+))?$")
_HUB_RE = re.compile(r"^[A-Za-z0-9][\w.\-]*(/[A-Za-z0-9][\w.\-]*)?$")


@dataclass(frozen=True)
class ModelRef:
    kind: RefKind
    value: str  # builtin name, registry spec, path or hub id
    raw: str
    revision: str | None = None

    @property
    def registry_parts(self) -> tuple[str, str | None, int | None]:
        """(name, alias, version) of a registry reference; bare name means alias `latest`."""
        m = _REGISTRY_RE.match(self.raw)
        assert m and self.kind == "registry"
        version = int(m["version"]) if m["version"] else None
        alias = m["alias"] if (m["alias"] or version is not None) else "latest"
        return m["name"], alias, version


def parse_ref(ref: str, revision: str | None = None) -> ModelRef:
    """Classify a reference string; raises ModelRefError for malformed ones."""
    ref = str(ref).strip()
    if not ref:
        raise ModelRefError("model reference is empty")
    if ref.startswith("builtin:"):
        return ModelRef("builtin", ref.split(":", 1)[1], ref)
    if ref.startswith("registry:"):
        if not _REGISTRY_RE.match(ref):
            raise ModelRefError(f"malformed registry reference `{ref}`: use registry:NAME@ALIAS or registry:NAME/VERSION")
        return ModelRef("registry", ref.split(":", 1)[1], ref)
    path = Path(ref).expanduser()
    if path.exists() or ref.startswith((".", "/", "~")) or ref.endswith("/"):
        return ModelRef("path", str(path), ref)
    if _HUB_RE.match(ref):
        return ModelRef("hub", ref, ref, revision)
    raise ModelRefError(f"`{ref}` is not a builtin:NAME, registry:NAME@ALIAS, an existing directory or a hub id")


def resolve_model(ref: str | ModelRef, revision: str | None = None) -> Path:
    """Return the local directory holding the referenced model (materialising it if needed)."""
    mref = ref if isinstance(ref, ModelRef) else parse_ref(ref, revision)
    if mref.kind == "builtin":
        from llmops.models.builtin import materialize

        return materialize(mref.value)
    if mref.kind == "registry":
        from llmops.registry.api import resolve_registry_ref

        name, alias, version = mref.registry_parts
        return resolve_registry_ref(name, alias=alias, version=version)
    if mref.kind == "path":
        path = Path(mref.value)
        if not path.is_dir():
            raise ModelRefError(f"model directory not found: {path}")
        if not ((path / "config.json").exists() or (path / "adapter_config.json").exists()):
            raise ModelRefError(f"{path}: not a model directory (no config.json or adapter_config.json)")
        return path
    return _hub_snapshot(mref)


def _hub_snapshot(mref: ModelRef) -> Path:
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(mref.value, revision=mref.revision, local_files_only=True))
    except Exception as local_exc:  # noqa: BLE001 - hub raises several types
        if not downloads_allowed():
            raise ModelRefError(
                f"hub model `{mref.value}` is not in the local HF cache and downloads are off "
                f"(set LLMOPS_ALLOW_DOWNLOADS=1 to fetch it): {type(local_exc).__name__}"
            ) from None
    try:
        return Path(snapshot_download(mref.value, revision=mref.revision))
    except Exception as exc:  # noqa: BLE001
        raise ModelRefError(f"cannot download hub model `{mref.value}`: {exc}") from None


_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".json", ".model", ".jinja", ".txt")


def model_hash(path: str | Path) -> str:
    """sha256 over the weight, config and tokenizer files of a model directory.

    The result is cached next to the files keyed by their sizes and mtimes, so hashing a
    large checkpoint happens once.
    """
    root = Path(path)
    files = sorted(
        p for p in root.rglob("*") if p.is_file() and p.suffix in _WEIGHT_SUFFIXES and p.name != ".llmops-hash.json"
    )
    if not files:
        raise ModelRefError(f"{root}: no model files to hash")
    stamp = [[str(p.relative_to(root)), p.stat().st_size, p.stat().st_mtime_ns] for p in files]
    cache = root / ".llmops-hash.json"
    try:
        cached = json.loads(cache.read_text())
        if cached.get("stamp") == stamp:
            return cached["sha256"]
    except (OSError, ValueError):
        pass
    digest = hashlib.sha256()
    for p in files:
        digest.update(str(p.relative_to(root)).encode())
        with p.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
    result = digest.hexdigest()
    try:
        cache.write_text(json.dumps({"stamp": stamp, "sha256": result}))
    except OSError:
        pass  # read-only model directories are fine; we just recompute next time
    return result

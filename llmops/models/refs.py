"""Model references: one string names a model everywhere a model is accepted.

- ``builtin:tiny`` — a built-in model, materialised locally on first use (no download);
- ``registry:NAME@ALIAS`` or ``registry:NAME/VERSION`` — a version in the model registry;
- a local directory (HF format: full weights or a LoRA adapter);
- a HF hub id (``Qwen/Qwen2.5-0.5B``) — from the local HF cache; downloads only when
  ``LLMOPS_ALLOW_DOWNLOADS=1``.

`resolve` turns any of them into a `ResolvedModel` — local path, content hash, base and
adapter paths, tokenizer source, registry name/version — once per command; backends,
training and serving take that object instead of resolving the string again.
`registry:` references are resolved by a plug-in (`register_resolver`), so this layer
does not import the registry: the registry registers itself through the
``llmops.model_resolvers`` entry point (or on import).
Content hashes are `llmops.models.hashing.model_hash`: the same digest the registry stores
for a version.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from llmops.errors import ModelRefError
from llmops.models.hashing import model_hash  # noqa: F401 - re-exported: the one model hash
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


SIDECAR = "llmops_model.json"  # written next to saved models: base reference, kind, lineage hints


def is_adapter_dir(path: Path) -> bool:
    return (path / "adapter_config.json").exists() and not (path / "config.json").exists()


def adapter_base_ref(path: Path) -> str:
    """The reference of the base model an adapter directory was trained on."""
    sidecar = path / SIDECAR
    if sidecar.exists():
        base = json.loads(sidecar.read_text()).get("base_ref")
        if base:
            return base
    cfg = json.loads((path / "adapter_config.json").read_text())
    base = cfg.get("base_model_name_or_path")
    if not base:
        raise ModelRefError(f"{path}: adapter does not record its base model")
    return base


@dataclass(frozen=True)
class ResolvedModel:
    """A model reference resolved to local files, once per command.

    `path` is the referenced directory (an adapter's own folder for adapters); `base` is
    the adapter's base model, resolved on first use. `sha256` covers the base too, so an
    adapter's hash changes when its base does.
    """

    ref: str
    kind: RefKind
    path: Path
    revision: str | None = None
    source: dict[str, Any] = field(default_factory=dict, hash=False)  # e.g. registry name/version

    @property
    def is_adapter(self) -> bool:
        return is_adapter_dir(self.path)

    @cached_property
    def base(self) -> ResolvedModel | None:
        return resolve(adapter_base_ref(self.path)) if self.is_adapter else None

    @property
    def weights_path(self) -> Path:
        """The directory holding full model weights (the base's for an adapter)."""
        return self.base.path if self.base is not None else self.path

    @property
    def tokenizer_path(self) -> Path:
        """An adapter's own tokenizer copy when it saved one, else its base's."""
        if self.base is not None and not (self.path / "tokenizer_config.json").exists():
            return self.base.path
        return self.path

    @cached_property
    def own_sha256(self) -> str:
        return model_hash(self.path)

    @cached_property
    def sha256(self) -> str:
        if self.base is None:
            return self.own_sha256
        return hashlib.sha256(f"{self.own_sha256}+{self.base.sha256}".encode()).hexdigest()

    @property
    def registry_name(self) -> str | None:
        return self.source.get("registry_name")

    @property
    def registry_version(self) -> int | None:
        return self.source.get("registry_version")

    def provenance(self) -> dict[str, Any]:
        """What a results file or manifest records about the model that ran."""
        doc: dict[str, Any] = {"ref": self.ref, "path": str(self.path), "sha256": self.sha256, **self.source}
        if self.base is not None:
            doc["base"] = {"ref": self.base.ref, "path": str(self.base.path), "sha256": self.base.sha256}
        return doc


# scheme -> resolver; a resolver returns (directory, source facts) for a parsed reference.
Resolver = Callable[[ModelRef], tuple[Path, dict[str, Any]]]
_RESOLVERS: dict[str, Resolver] = {}
RESOLVER_ENTRY_POINTS = "llmops.model_resolvers"


def register_resolver(scheme: str, resolver: Resolver) -> None:
    """Plug in the resolver of ``scheme:`` references (the registry registers `registry`)."""
    _RESOLVERS[scheme] = resolver


def _resolver_for(scheme: str) -> Resolver:
    if scheme not in _RESOLVERS:
        from importlib.metadata import entry_points

        for ep in entry_points(group=RESOLVER_ENTRY_POINTS, name=scheme):
            register_resolver(scheme, ep.load())
    if scheme not in _RESOLVERS:
        raise ModelRefError(
            f"no resolver for `{scheme}:` references: install llmops (its `{RESOLVER_ENTRY_POINTS}` entry point) "
            f"or import the package that provides it"
        )
    return _RESOLVERS[scheme]


def resolve(ref: str | ModelRef | ResolvedModel, revision: str | None = None) -> ResolvedModel:
    """Resolve a reference to local files; a `ResolvedModel` passes through unchanged."""
    if isinstance(ref, ResolvedModel):
        return ref
    mref = ref if isinstance(ref, ModelRef) else parse_ref(ref, revision)
    path, source = _locate(mref)
    return ResolvedModel(mref.raw, mref.kind, Path(path), mref.revision, source)


def _locate(mref: ModelRef) -> tuple[Path, dict[str, Any]]:
    if mref.kind == "builtin":
        from llmops.models.builtin import materialize

        return materialize(mref.value), {}
    if mref.kind == "registry":
        return _resolver_for("registry")(mref)
    if mref.kind == "path":
        path = Path(mref.value)
        if not path.is_dir():
            raise ModelRefError(f"model directory not found: {path}")
        if not ((path / "config.json").exists() or (path / "adapter_config.json").exists()):
            raise ModelRefError(f"{path}: not a model directory (no config.json or adapter_config.json)")
        return path, {}
    return _hub_snapshot(mref), {}


def resolve_model(ref: str | ModelRef | ResolvedModel, revision: str | None = None) -> Path:
    """The local directory holding the referenced model (materialising it if needed)."""
    return resolve(ref, revision).path


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
        from llmops.models.hub_files import download_model

        return Path(download_model(mref.value, revision=mref.revision))
    except Exception as exc:  # noqa: BLE001
        raise ModelRefError(f"cannot download hub model `{mref.value}`: {exc}") from None

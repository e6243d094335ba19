"""Pick the artifact store for a root: a local folder, or any fsspec URL (``s3://bucket/prefix``)."""

from __future__ import annotations

from llmops.registry.artifacts import ArtifactStore, default_root


def is_remote(root: str) -> bool:
    return "://" in root and not root.startswith("file://")


def open_artifacts(root: str | None, registry_id: str):
    """The artifact store of `registry_id` at `root` (default: `default_root`); claims the root."""
    root = str(root) if root else default_root(registry_id)
    if is_remote(root):
        from llmops.registry.remote import FsspecArtifactStore

        return FsspecArtifactStore(root, registry_id)
    return ArtifactStore(root.removeprefix("file://"), registry_id)

"""The registry's Python API (training registers, evaluation attaches, refs resolve).

Every function takes an optional ``db_url`` (default: `llmops.settings.database_url`)
and creates the schema on first use. The artifact root is ``$LLMOPS_REGISTRY_ROOT``
(a folder or an fsspec URL such as ``s3://bucket/prefix``) or a folder of
``$LLMOPS_HOME/registry/artifacts`` private to the database's registry.

These functions are for trusted in-process callers (training, the loop): they act as
a service-role `Principal` named after `actor` unless given one. The CLI and the HTTP
service authenticate API keys and pass the resulting principal.
"""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path
from typing import Any

from llmops.models.refs import ModelRef, register_resolver
from llmops.registry import governance
from llmops.registry.artifacts import configured_root
from llmops.registry.entities import (
    AliasEvent,
    EvalAttachment,
    ModelSummary,
    ModelVersion,
    PromotionRecord,
    RegistryError,
    default_actor,
)
from llmops.registry.gates import Comparator
from llmops.registry.governance import Principal, local_principal
from llmops.registry.store import SqlRegistryStore
from llmops.settings import database_url

log = logging.getLogger(__name__)
_stores: dict[tuple[str, str], SqlRegistryStore] = {}
_lock = threading.Lock()

__all__ = [
    "ModelVersion",
    "alias_history",
    "attach_eval",
    "card",
    "delete_version",
    "get_store",
    "get_version",
    "list_models",
    "list_versions",
    "promote",
    "register_version",
    "resolve_registry_ref",
    "set_alias",
    "set_tags",
]


def get_store(db_url: str | None = None) -> SqlRegistryStore:
    """The registry store for a database (one per URL and artifact root per process)."""
    url = database_url(db_url)
    root = configured_root()
    key = (url, str(root))
    with _lock:
        if key not in _stores:
            _stores[key] = SqlRegistryStore(url, root)
        return _stores[key]


def normalise_lineage(lineage: dict[str, Any] | None, artifact_dir: Path) -> dict[str, Any]:
    out = dict(lineage or {})
    try:
        json.dumps(out)
    except (TypeError, ValueError) as exc:
        raise RegistryError(f"lineage must be JSON-serialisable: {exc}") from None
    sidecar = artifact_dir / "llmops_model.json"
    if not out.get("base_model_ref") and sidecar.is_file():
        try:
            base = json.loads(sidecar.read_text()).get("base_ref")
        except ValueError:
            base = None
        if base:
            out["base_model_ref"] = base
    parent = out.get("parent_version")
    if isinstance(parent, str) and parent.startswith("registry:"):
        out["parent_version"] = parent.split(":", 1)[1]
    return out


def register_version(
    name: str,
    artifact_dir: str | Path,
    lineage: dict[str, Any] | None = None,
    tags: dict[str, str] | None = None,
    db_url: str | None = None,
    description: str = "",
    actor: str | None = None,
) -> ModelVersion:
    """Copy `artifact_dir` into the registry store as the next version of `name`.

    Lineage keys: base_model_ref, base_model_hash, parent_version (an int of the same
    model or "OTHER/3"), recipe, recipe_hash, dataset_fingerprints,
    feedback_snapshot_id, run_id. Other keys are kept as given.
    """
    artifact_dir = Path(artifact_dir).expanduser()
    mv = get_store(db_url).register(
        name, artifact_dir, normalise_lineage(lineage, artifact_dir), tags, description,
        actor or local_principal(default_actor()).id,
    )
    log.info("registered %s (sha256 %s…)", mv.ref, mv.sha256[:12])
    return mv


def get_version(
    name: str, version: int | None = None, alias: str | None = None, db_url: str | None = None
) -> ModelVersion:
    return get_store(db_url).get_version(name, version=version, alias=alias)


def resolve_registry_ref(
    name: str, alias: str | None = None, version: int | None = None, db_url: str | None = None
) -> Path:
    """Local, read-only directory of `registry:NAME@ALIAS` / `registry:NAME/VERSION`
    (the stored folder, or a hash-verified cached download for object storage)."""
    store = get_store(db_url)
    mv = store.get_version(name, version=version, alias=alias)
    return store.artifacts.materialize(mv.artifact_uri, mv.sha256)


def resolve_model_ref(mref: ModelRef) -> tuple[Path, dict[str, Any]]:
    """The `registry:` resolver plugged into `llmops.models.refs` (entry point `llmops.model_resolvers`).

    With $LLMOPS_REGISTRY_URL set, the version is fetched from `llmops registry serve`
    (hash-verified, cached) instead of the local database."""
    name, alias, version = mref.registry_parts
    from llmops.registry.client import RegistryClient

    if client := RegistryClient.from_env():
        info = client.show(name, str(version) if version is not None else f"@{alias or 'latest'}")
        return client.download(name, str(info["version"])), {
            "registry_name": name, "registry_version": info["version"], "registry_sha256": info["sha256"]}
    store = get_store()
    mv = store.get_version(name, version=version, alias=alias)
    path = store.artifacts.materialize(mv.artifact_uri, mv.sha256)
    return path, {"registry_name": mv.name, "registry_version": mv.version, "registry_sha256": mv.sha256}


register_resolver("registry", resolve_model_ref)


def list_models(db_url: str | None = None) -> list[ModelSummary]:
    return get_store(db_url).list_models()


def list_versions(name: str, db_url: str | None = None) -> list[ModelVersion]:
    return get_store(db_url).list_versions(name)


def set_tags(name: str, version: int, tags: dict[str, str | None], db_url: str | None = None,
             actor: str | None = None, principal: Principal | None = None, reason: str = "") -> ModelVersion:
    """Add or change tags (a None value removes one); identity columns never change. Audited."""
    who = governance.authorize(principal or local_principal(actor), governance.TAG)
    return get_store(db_url).set_tags(name, version, tags, actor=who.id, reason=reason)


def delete_version(name: str, version: int, db_url: str | None = None, actor: str | None = None,
                   principal: Principal | None = None, reason: str = "") -> None:
    """Delete a version and its artifact (admins only); its number is never handed out again. Audited."""
    who = governance.authorize(principal or local_principal(actor), governance.DELETE)
    get_store(db_url).delete_version(name, version, actor=who.id, reason=reason)


def attach_eval(
    name: str,
    version: int,
    results_dir: str | Path,
    suite: str | None = None,
    db_url: str | None = None,
    actor: str | None = None,
) -> EvalAttachment:
    """Copy an evaluation result directory (results.json, samples.jsonl) onto a version.

    The results must carry the version's hash (provenance.artifact_hash or model_hash)."""
    return get_store(db_url).attach_eval(name, version, results_dir, suite=suite,
                                         actor=actor or local_principal(default_actor()).id)


def set_alias(
    name: str,
    alias: str,
    version: int | None,
    actor: str | None = None,
    reason: str = "",
    db_url: str | None = None,
    principal: Principal | None = None,
    force: bool = False,
) -> AliasEvent:
    """Move (or with version=None remove) an alias without gates; refused on a protected alias
    unless an admin principal forces it with a reason. Every move is audited."""
    return governance.move_alias(get_store(db_url), principal or local_principal(actor), name, alias, version,
                                 reason=reason, force=force)


def alias_history(name: str, alias: str | None = None, db_url: str | None = None) -> list[AliasEvent]:
    return get_store(db_url).alias_history(name, alias)


def promote(
    name: str,
    version: int,
    alias: str,
    gates_file: str | Path | None,
    actor: str | None = None,
    reason: str = "",
    force: bool = False,
    db_url: str | None = None,
    compare: Comparator | None = None,
    principal: Principal | None = None,
) -> PromotionRecord:
    """Point `alias` at `version` if its gates pass (see `governance.promote`)."""
    return governance.promote(get_store(db_url), principal or local_principal(actor), name, version, alias,
                              gates_file, reason=reason, force=force, compare=compare)


def card(name: str, version: int, db_url: str | None = None) -> str:
    """The model card (README.md text) of a version."""
    return get_store(db_url).card(name, version)

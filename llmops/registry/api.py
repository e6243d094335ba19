"""The registry's Python API (training registers, evaluation attaches, refs resolve).

Every function takes an optional ``db_url`` (default: `llmops.settings.database_url`)
and creates the schema on first use. The artifact store root is
``$LLMOPS_REGISTRY_ROOT`` or ``$LLMOPS_HOME/registry/artifacts``.
"""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path
from typing import Any

from llmops.models.refs import ModelRef, register_resolver
from llmops.registry.artifacts import ArtifactStore, default_root
from llmops.registry.entities import (
    AliasEvent,
    EvalAttachment,
    ModelSummary,
    ModelVersion,
    PromotionRecord,
    PromotionRefused,
    RegistryError,
    default_actor,
    validate_alias,
)
from llmops.registry.gates import Comparator, GateEvaluator, load_gates
from llmops.registry.store import SqlRegistryStore
from llmops.settings import database_url

log = logging.getLogger(__name__)
_stores: dict[tuple[str, str], SqlRegistryStore] = {}
_lock = threading.Lock()

__all__ = [
    "ModelVersion",
    "alias_history",
    "attach_eval",
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
    root = default_root()
    key = (url, str(root))
    with _lock:
        if key not in _stores:
            _stores[key] = SqlRegistryStore(url, ArtifactStore(root))
        return _stores[key]


def _normalise_lineage(lineage: dict[str, Any] | None, artifact_dir: Path) -> dict[str, Any]:
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
        name, artifact_dir, _normalise_lineage(lineage, artifact_dir), tags, description, actor
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
    """Local directory of `registry:NAME@ALIAS` / `registry:NAME/VERSION` (inside the store)."""
    store = get_store(db_url)
    mv = store.get_version(name, version=version, alias=alias)
    return store.artifacts.path(mv.artifact_uri)


def resolve_model_ref(mref: ModelRef) -> tuple[Path, dict[str, Any]]:
    """The `registry:` resolver plugged into `llmops.models.refs` (entry point `llmops.model_resolvers`)."""
    name, alias, version = mref.registry_parts
    store = get_store()
    mv = store.get_version(name, version=version, alias=alias)
    return store.artifacts.path(mv.artifact_uri), {"registry_name": mv.name, "registry_version": mv.version}


register_resolver("registry", resolve_model_ref)


def list_models(db_url: str | None = None) -> list[ModelSummary]:
    return get_store(db_url).list_models()


def list_versions(name: str, db_url: str | None = None) -> list[ModelVersion]:
    return get_store(db_url).list_versions(name)


def set_tags(name: str, version: int, tags: dict[str, str | None], db_url: str | None = None) -> ModelVersion:
    """Add or change tags (a None value removes one); identity columns never change."""
    return get_store(db_url).set_tags(name, version, tags)


def delete_version(name: str, version: int, db_url: str | None = None, actor: str | None = None) -> None:
    """Delete a version and its artifact; its number is never handed out again."""
    get_store(db_url).delete_version(name, version, actor)


def attach_eval(
    name: str,
    version: int,
    results_dir: str | Path,
    suite: str | None = None,
    db_url: str | None = None,
    actor: str | None = None,
) -> EvalAttachment:
    """Copy an evaluation result directory (results.json, samples.jsonl) onto a version."""
    return get_store(db_url).attach_eval(name, version, results_dir, suite=suite, actor=actor)


def set_alias(
    name: str,
    alias: str,
    version: int | None,
    actor: str | None = None,
    reason: str = "",
    db_url: str | None = None,
) -> AliasEvent:
    """Move (or with version=None remove) an alias without gates; the move is audited."""
    return get_store(db_url).set_alias(name, alias, version, actor=actor or default_actor(), reason=reason)


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
) -> PromotionRecord:
    """Point `alias` at `version` if the gates of `alias` pass.

    Refusals raise `PromotionRefused` naming every failing rule. ``force=True`` skips
    failing gates only for an admin (gates file `admins` or $LLMOPS_REGISTRY_ADMINS);
    every attempt, refused or not, is recorded in the promotion log.
    """
    store = get_store(db_url)
    actor = actor or default_actor()
    validate_alias(alias)
    config = load_gates(gates_file)
    candidate = store.get_version(name, version=version)
    report = GateEvaluator(store, config, compare).evaluate(candidate, alias)
    gates_ref = str(gates_file) if gates_file else None

    def record(decision: str, why: str) -> PromotionRecord:
        return store.record_promotion(name, version, alias, decision, actor, why, report.to_dict(), gates_ref)

    if force and not config.is_admin(actor):
        record("refused", f"--force by non-admin `{actor}`: {reason}")
        raise RegistryError(f"--force needs an admin: `{actor}` is not in the gates file's `admins`")
    if not report.passed and not force:
        record("refused", reason)
        raise PromotionRefused(report.refusal(), report.to_dict())
    forced = force and not report.passed
    why = reason + (f" [forced past: {report.refusal()}]" if forced else "")
    store.set_alias(name, alias, version, actor=actor, reason=why, forced=forced,
                    expect_current=report.baseline_version)
    return record("forced" if forced else "accepted", why)

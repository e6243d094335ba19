"""The SQL implementation of `RegistryStore` (SQLite or PostgreSQL).

Version numbers come from ``registry_models.next_version``, incremented with
``UPDATE ... RETURNING`` in the same transaction that inserts the version row. On
PostgreSQL the row lock serialises concurrent registrations of one model; on SQLite
every transaction is ``BEGIN IMMEDIATE``. A rolled-back registration rolls its
increment back too (no gaps); a deletion never decrements it (no reuse).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from llmops.db import session_factory
from llmops.db.engine import read_only_session
from llmops.errors import DataError
from llmops.registry.artifacts import card_uri, validate_name
from llmops.registry.governance_store import GovernanceMixin
from llmops.registry.storage import open_artifacts
from llmops.registry.entities import (
    AliasEvent,
    EvalAttachment,
    ModelSummary,
    ModelVersion,
    PromotionRecord,
    RegistryError,
    RegistryNotFound,
    default_actor,
    validate_alias,
)
from llmops.registry.interface import RegistryStore
from llmops.registry.tables import (
    REGISTRY_HEAD,
    AliasEventRow,
    AliasRow,
    EvalResultRow,
    AuditRow,
    ModelVersionRow,
    PromotionRow,
    RegisteredModelRow,
    RegistryMetaRow,
    utcnow,
)
from llmops.db.schema import ensure_schema
from llmops.settings import database_url

__all__ = ["RegistryStore", "SqlRegistryStore"]


def _read_results(results_dir: Path) -> dict[str, Any]:
    path = results_dir / "results.json"
    if not path.is_file():
        raise DataError(f"{results_dir}: no results.json (expected an evaluation result directory)")
    try:
        data = json.loads(path.read_text())
    except ValueError as exc:
        raise DataError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("metrics"), dict):
        raise DataError(f"{path}: missing the `metrics` object")
    return data


def suite_name(results: dict[str, Any], fallback: str) -> str:
    """The suite an eval result belongs to: results.suite, provenance.suite, else the dir name."""
    prov = results.get("provenance") if isinstance(results.get("provenance"), dict) else {}
    for cand in (results.get("suite"), prov.get("suite"), prov.get("suite_name")):
        if isinstance(cand, dict):
            cand = cand.get("name")
        if isinstance(cand, str) and cand:
            return cand
    return fallback


def results_model_hashes(results: dict[str, Any]) -> set[str]:
    """The model hashes an evaluation result carries (provenance.artifact_hash / model_hash)."""
    prov = results.get("provenance") if isinstance(results.get("provenance"), dict) else {}
    return {h for h in (prov.get("artifact_hash"), prov.get("model_hash"), results.get("model_hash"))
            if isinstance(h, str) and h}


class SqlRegistryStore(GovernanceMixin, RegistryStore):
    """The registry on the shared SQLAlchemy database (SQLite or PostgreSQL).

    `root` is the artifact root (a path or an fsspec URL); default: `artifacts.default_root`.
    The root must belong to this database's registry (see `llmops.registry.artifacts`).
    """

    def __init__(self, db_url: str | None = None, root: str | None = None) -> None:
        self.url = database_url(db_url)
        ensure_schema(self.url, REGISTRY_HEAD)
        self._sessions = session_factory(self.url)
        with self._read() as s:
            self.registry_id = s.scalar(select(RegistryMetaRow.value).where(RegistryMetaRow.key == "registry_id"))
        if not self.registry_id:
            raise RegistryError(f"database {self.url} has no registry id (registry_meta): run the migrations")
        self.artifacts = open_artifacts(root, self.registry_id)

    @contextmanager
    def _tx(self) -> Iterator[Session]:
        with self._sessions.begin() as session:
            yield session

    @contextmanager
    def _read(self) -> Iterator[Session]:
        """Read-only transaction: on SQLite it begins DEFERRED, so lookups (alias polling
        by servers, `registry list`) never queue behind writers for the write lock."""
        with read_only_session(self.url) as session, session.begin():
            yield session

    # --- models and versions -------------------------------------------------------
    def _model(self, s: Session, name: str) -> RegisteredModelRow:
        row = s.scalar(select(RegisteredModelRow).where(RegisteredModelRow.name == name))
        if row is None:
            raise RegistryNotFound(f"no registered model named `{name}`")
        return row

    def _ensure_model(self, s: Session, name: str) -> int:
        dialect = s.get_bind().dialect.name
        if dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert
        s.execute(
            insert(RegisteredModelRow)
            .values(name=name, description="", next_version=1, created_at=utcnow())
            .on_conflict_do_nothing(index_elements=["name"])
        )
        return s.scalar(select(RegisteredModelRow.id).where(RegisteredModelRow.name == name))

    def _aliases_of(self, s: Session, model_id: int) -> dict[int, list[str]]:
        out: dict[int, list[str]] = {}
        for a in s.scalars(select(AliasRow).where(AliasRow.model_id == model_id).order_by(AliasRow.alias)):
            out.setdefault(a.version, []).append(a.alias)
        return out

    def _view(self, name: str, row: ModelVersionRow, aliases: list[str]) -> ModelVersion:
        return ModelVersion(
            name=name,
            version=row.version,
            artifact_uri=row.artifact_uri,
            artifact_path=self.artifacts.path(row.artifact_uri, must_exist=False),
            sha256=row.artifact_sha256,
            n_bytes=row.artifact_bytes,
            lineage=dict(row.lineage or {}),
            tags=dict(row.tags or {}),
            description=row.description,
            created_by=row.created_by,
            created_at=row.created_at,
            aliases=tuple(aliases),
        )

    def register(self, name, artifact_dir, lineage=None, tags=None, description="", actor=None) -> ModelVersion:
        validate_name(name)
        tags = {str(k): str(v) for k, v in (tags or {}).items()}
        staged = self.artifacts.stage(artifact_dir)
        stored = None
        try:
            with self._tx() as s:
                model_id = self._ensure_model(s, name)
                nxt = s.execute(
                    update(RegisteredModelRow)
                    .where(RegisteredModelRow.id == model_id)
                    .values(next_version=RegisteredModelRow.next_version + 1)
                    .returning(RegisteredModelRow.next_version)
                ).scalar_one()
                version = nxt - 1
                stored = self.artifacts.commit(staged, name, version)
                row = ModelVersionRow(
                    model_id=model_id,
                    version=version,
                    artifact_uri=stored.uri,
                    artifact_sha256=stored.sha256,
                    artifact_bytes=stored.n_bytes,
                    lineage=dict(lineage or {}),
                    tags=tags,
                    description=description,
                    created_by=actor or default_actor(),
                )
                s.add(row)
                s.flush()
                view = self._view(name, row, [])
        except BaseException:
            self.artifacts.discard(staged)
            if stored is not None:
                self.artifacts.remove(stored.uri)
            raise
        self.refresh_card(name, view.version)
        return view

    def _version_row(self, s: Session, model: RegisteredModelRow, version: int) -> ModelVersionRow:
        row = s.scalar(
            select(ModelVersionRow).where(ModelVersionRow.model_id == model.id, ModelVersionRow.version == version)
        )
        if row is None:
            raise RegistryNotFound(f"model `{model.name}` has no version {version}")
        return row

    def get_version(self, name, version=None, alias=None) -> ModelVersion:
        with self._read() as s:
            model = self._model(s, name)
            if version is None:
                alias = alias or "latest"
                if alias == "latest":
                    newest = select(func.max(ModelVersionRow.version)).where(ModelVersionRow.model_id == model.id)
                    version = s.scalar(newest)
                    if version is None:
                        raise RegistryNotFound(f"model `{name}` has no versions")
                else:
                    validate_alias(alias)
                    version = self._alias_target(s, model.id, alias)
                    if version is None:
                        raise RegistryNotFound(f"model `{name}` has no alias `{alias}`")
            row = self._version_row(s, model, int(version))
            return self._view(name, row, self._aliases_of(s, model.id).get(row.version, []))

    def list_models(self) -> list[ModelSummary]:
        with self._read() as s:
            out = []
            for m in s.scalars(select(RegisteredModelRow).order_by(RegisteredModelRow.name)):
                versions = list(s.scalars(select(ModelVersionRow.version).where(ModelVersionRow.model_id == m.id)))
                aliases = {a.alias: a.version for a in s.scalars(select(AliasRow).where(AliasRow.model_id == m.id))}
                out.append(
                    ModelSummary(m.name, m.description, len(versions), max(versions, default=None), m.next_version,
                                 dict(sorted(aliases.items())), m.created_at)
                )
            return out

    def list_versions(self, name) -> list[ModelVersion]:
        with self._read() as s:
            model = self._model(s, name)
            aliases = self._aliases_of(s, model.id)
            rows = s.scalars(
                select(ModelVersionRow).where(ModelVersionRow.model_id == model.id).order_by(ModelVersionRow.version)
            )
            return [self._view(name, r, aliases.get(r.version, [])) for r in rows]

    def delete_version(self, name, version, actor=None, reason="") -> None:
        with self._tx() as s:
            model = self._model(s, name)
            row = self._version_row(s, model, version)
            held = sorted(a for v, al in self._aliases_of(s, model.id).items() if v == version for a in al)
            if held:
                raise RegistryError(f"{name}/{version} is held by alias(es) {', '.join(held)}: move them first")
            uris = [row.artifact_uri, *(e.results_uri for e in row.evals)]
            s.add(AuditRow(action="delete", model_name=name, version=version, actor=actor or default_actor(),
                           reason=reason or "", detail={"sha256": row.artifact_sha256, "uri": row.artifact_uri}))
            s.delete(row)
        for uri in uris:
            if uri.split("/", 1)[0] in ("models", "evals"):  # never what an older layout put elsewhere
                self.artifacts.remove(uri)
        self.artifacts.remove(card_uri(name, version))

    def set_tags(self, name, version, tags, actor=None, reason="") -> ModelVersion:
        with self._tx() as s:
            model = self._model(s, name)
            row = self._version_row(s, model, version)
            before = dict(row.tags or {})
            merged = dict(before)
            for k, v in tags.items():
                if v is None:
                    merged.pop(str(k), None)
                else:
                    merged[str(k)] = str(v)
            row.tags = merged
            changes = {k: [before.get(k), merged.get(k)] for k in sorted(set(before) | set(merged))
                       if before.get(k) != merged.get(k)}
            s.add(AuditRow(action="tags", model_name=name, version=version, actor=actor or default_actor(),
                           reason=reason or "", detail={"changes": changes}))
            s.flush()
            view = self._view(name, row, self._aliases_of(s, model.id).get(row.version, []))
        self.refresh_card(name, version)
        return view

    # --- evaluation results ----------------------------------------------------------
    def attach_eval(self, name, version, results_dir, suite=None, actor=None) -> EvalAttachment:
        src = Path(results_dir).expanduser()
        results = _read_results(src)
        suite = suite or suite_name(results, src.name)
        mv = self.get_version(name, version)  # fail before copying anything
        carried = results_model_hashes(results)
        if mv.sha256 not in carried:
            got = ", ".join(sorted(h[:12] + "…" for h in carried)) or "no model hash"
            raise RegistryError(
                f"{src}/results.json: evaluated model hash {got} is not {name}/{version}'s hash "
                f"{mv.sha256[:12]}…: attach only an evaluation of this version (e.g. of registry:{name}/{version})"
            )
        stored = self.artifacts.copy_into(src, f"evals/{validate_name(name)}/{int(version)}/{uuid.uuid4().hex[:12]}")
        try:
            with self._tx() as s:
                row_v = self._version_row(s, self._model(s, name), version)
                row = EvalResultRow(
                    version_id=row_v.id, suite=suite, metrics=results["metrics"], results_uri=stored.uri,
                    results_sha256=stored.sha256, attached_by=actor or default_actor(), model_hash=mv.sha256,
                )
                s.add(row)
                s.flush()
                view = self._eval_view(name, version, row)
        except BaseException:
            self.artifacts.remove(stored.uri)
            raise
        self.refresh_card(name, version)
        return view

    def _eval_view(self, name: str, version: int, row: EvalResultRow) -> EvalAttachment:
        return EvalAttachment(
            row.id, name, version, row.suite, dict(row.metrics), self.artifacts.path(row.results_uri, must_exist=False),
            row.results_sha256, row.attached_by, row.attached_at, row.results_uri, row.model_hash,
        )

    def eval_dir(self, ev: EvalAttachment) -> Path:
        """A local directory with an attached result (downloaded and verified for object storage)."""
        return self.artifacts.materialize(ev.results_uri, ev.sha256) if ev.results_uri else ev.results_path

    def evals(self, name, version) -> list[EvalAttachment]:
        with self._read() as s:
            row_v = self._version_row(s, self._model(s, name), version)
            q = select(EvalResultRow).where(EvalResultRow.version_id == row_v.id).order_by(EvalResultRow.id)
            rows = s.scalars(q)
            return [self._eval_view(name, version, r) for r in rows]

    # --- aliases and the audit log ---------------------------------------------------
    def _alias_target(self, s: Session, model_id: int, alias: str) -> int | None:
        return s.scalar(select(AliasRow.version).where(AliasRow.model_id == model_id, AliasRow.alias == alias))

    def alias_version(self, name, alias) -> int | None:
        with self._read() as s:
            return self._alias_target(s, self._model(s, name).id, validate_alias(alias))

    def set_alias(self, name, alias, version, actor=None, reason="", forced=False, expect_current=...) -> AliasEvent:
        """Point `alias` at `version` (None removes it) and append the move to the audit log.

        `expect_current` makes the move conditional (compare-and-set): a promotion passes
        the holder its gates compared against, so a concurrent move is never overwritten.
        """
        validate_alias(alias)
        with self._tx() as s:
            # Lock the model row (PostgreSQL) so concurrent moves of its aliases serialise.
            model = s.scalar(select(RegisteredModelRow).where(RegisteredModelRow.name == name).with_for_update())
            if model is None:
                raise RegistryNotFound(f"no registered model named `{name}`")
            if version is not None:
                self._version_row(s, model, int(version))
            row = s.scalar(select(AliasRow).where(AliasRow.model_id == model.id, AliasRow.alias == alias))
            current = row.version if row else None
            if expect_current is not ... and current != expect_current:
                raise RegistryError(
                    f"alias `{alias}` of `{name}` moved to {current} while this change was prepared "
                    f"(expected {expect_current}); retry"
                )
            if version is None:
                if row is None:
                    raise RegistryNotFound(f"model `{name}` has no alias `{alias}`")
                s.delete(row)
            elif row is None:
                s.add(AliasRow(model_id=model.id, alias=alias, version=int(version)))
            else:
                row.version = int(version)
                row.updated_at = utcnow()
            event = AliasEventRow(
                model_name=name, alias=alias, from_version=current, to_version=version, actor=actor or default_actor(),
                reason=reason or "", forced=bool(forced),
            )
            s.add(event)
            if forced:
                s.add(AuditRow(action="force_alias", model_name=name, version=version, actor=event.actor,
                               reason=reason or "", detail={"alias": alias, "from": current, "to": version}))
            s.flush()
            view = self._event_view(event)
        for v in {current, version} - {None}:
            self.refresh_card(name, v)
        return view

    @staticmethod
    def _event_view(e: AliasEventRow) -> AliasEvent:
        return AliasEvent(e.id, e.model_name, e.alias, e.from_version, e.to_version, e.actor, e.reason, e.forced, e.at)

    def alias_history(self, name, alias=None) -> list[AliasEvent]:
        with self._read() as s:
            q = select(AliasEventRow).where(AliasEventRow.model_name == name)
            if alias:
                q = q.where(AliasEventRow.alias == alias)
            return [self._event_view(e) for e in s.scalars(q.order_by(AliasEventRow.id))]

    def record_promotion(self, name, version, alias, decision, actor, reason, report, gates_file=None):
        with self._tx() as s:
            row = PromotionRow(
                model_name=name, version=version, alias=alias, decision=decision, actor=actor, reason=reason or "",
                report=report, gates_file=gates_file,
            )
            s.add(row)
            s.flush()
            record = PromotionRecord(row.id, name, version, alias, decision, actor, row.reason, report, row.at)
        self.refresh_card(name, version)
        return record

    def promotions(self, name) -> list[PromotionRecord]:
        with self._read() as s:
            rows = s.scalars(select(PromotionRow).where(PromotionRow.model_name == name).order_by(PromotionRow.id))
            return [
                PromotionRecord(r.id, name, r.version, r.alias, r.decision, r.actor, r.reason, dict(r.report), r.at)
                for r in rows
            ]

"""Paginated reads of the registry for the CLI and the web UI (one query layer for both).

Every list here is a keyset page: the caller passes the last key it saw (``before``/``after``)
and a limit, and gets at most `limit` rows plus the cursor of the next page (None at the end).
The keys are the columns the tables index already: ``registry_models.name`` (unique),
``(registry_versions.model_id, version)`` (unique), and the ``id`` primary keys of the
append-only logs filtered by their indexed ``model_name``. So a page costs the same on the
first and on the thousandth page, however many versions or log entries a model has.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from sqlalchemy import func, select

from llmops.registry.entities import AliasEvent, AuditEntry, EvalAttachment, ModelSummary, ModelVersion, PromotionRecord
from llmops.registry.store import SqlRegistryStore
from llmops.registry.tables import (
    AliasEventRow,
    AliasRow,
    AuditRow,
    ModelVersionRow,
    PromotionRow,
    RegisteredModelRow,
)

T = TypeVar("T")
MAX_LIMIT = 500


@dataclass
class Page(Generic[T]):
    """One page of rows and the cursor that fetches the next one (None: this is the last page)."""

    items: list[T] = field(default_factory=list)
    next_cursor: Any = None


def _limit(limit: int) -> int:
    if limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")
    return min(int(limit), MAX_LIMIT)


def models_page(store: SqlRegistryStore, limit: int = 50, after: str | None = None) -> Page[ModelSummary]:
    """Registered models by name, after `after`: version counts and aliases in two queries per page."""
    n = _limit(limit)
    with store._read() as s:
        q = select(RegisteredModelRow).order_by(RegisteredModelRow.name).limit(n + 1)
        if after is not None:
            q = q.where(RegisteredModelRow.name > after)
        models = list(s.scalars(q))
        more = len(models) > n
        models = models[:n]
        ids = [m.id for m in models]
        counts = {mid: (int(c), mx) for mid, c, mx in s.execute(
            select(ModelVersionRow.model_id, func.count(ModelVersionRow.id), func.max(ModelVersionRow.version))
            .where(ModelVersionRow.model_id.in_(ids)).group_by(ModelVersionRow.model_id))} if ids else {}
        aliases: dict[int, dict[str, int]] = {}
        for a in (s.scalars(select(AliasRow).where(AliasRow.model_id.in_(ids)).order_by(AliasRow.alias))
                  if ids else []):
            aliases.setdefault(a.model_id, {})[a.alias] = a.version
        items = [ModelSummary(m.name, m.description, counts.get(m.id, (0, None))[0], counts.get(m.id, (0, None))[1],
                              m.next_version, aliases.get(m.id, {}), m.created_at) for m in models]
    return Page(items, items[-1].name if more and items else None)


def model_summary(store: SqlRegistryStore, name: str) -> ModelSummary:
    """One model's version count, newest version and current aliases."""
    with store._read() as s:
        m = store._model(s, name)
        count, newest = s.execute(select(func.count(ModelVersionRow.id), func.max(ModelVersionRow.version))
                                  .where(ModelVersionRow.model_id == m.id)).one()
        aliases = {a.alias: a.version for a in s.scalars(select(AliasRow).where(AliasRow.model_id == m.id)
                                                          .order_by(AliasRow.alias))}
        return ModelSummary(m.name, m.description, int(count), newest, m.next_version, aliases, m.created_at)


def versions_page(store: SqlRegistryStore, name: str, limit: int = 50, before: int | None = None
                  ) -> Page[ModelVersion]:
    """Versions of `name`, newest first, older than version `before` (keyset on the unique index)."""
    n = _limit(limit)
    with store._read() as s:
        model = store._model(s, name)
        q = (select(ModelVersionRow).where(ModelVersionRow.model_id == model.id)
             .order_by(ModelVersionRow.version.desc()).limit(n + 1))
        if before is not None:
            q = q.where(ModelVersionRow.version < before)
        rows = list(s.scalars(q))
        more = len(rows) > n
        rows = rows[:n]
        aliases = store._aliases_of(s, model.id)
        items = [store._view(name, r, aliases.get(r.version, [])) for r in rows]
    return Page(items, items[-1].version if more and items else None)


def promotions_page(store: SqlRegistryStore, name: str, version: int | None = None, limit: int = 50,
                    before: int | None = None) -> Page[PromotionRecord]:
    """Promotion attempts (accepted, refused, forced) with their gate reports, newest first."""
    n = _limit(limit)
    with store._read() as s:
        q = select(PromotionRow).where(PromotionRow.model_name == name).order_by(PromotionRow.id.desc()).limit(n + 1)
        if version is not None:
            q = q.where(PromotionRow.version == version)
        if before is not None:
            q = q.where(PromotionRow.id < before)
        rows = list(s.scalars(q))
    items = [PromotionRecord(r.id, name, r.version, r.alias, r.decision, r.actor, r.reason, dict(r.report), r.at)
             for r in rows[:n]]
    return Page(items, items[-1].id if len(rows) > n and items else None)


def alias_events_page(store: SqlRegistryStore, name: str, alias: str | None = None, limit: int = 50,
                      before: int | None = None) -> Page[AliasEvent]:
    """Alias moves of `name` (optionally one alias), newest first."""
    n = _limit(limit)
    with store._read() as s:
        q = (select(AliasEventRow).where(AliasEventRow.model_name == name)
             .order_by(AliasEventRow.id.desc()).limit(n + 1))
        if alias:
            q = q.where(AliasEventRow.alias == alias)
        if before is not None:
            q = q.where(AliasEventRow.id < before)
        rows = list(s.scalars(q))
    items = [store._event_view(e) for e in rows[:n]]
    return Page(items, items[-1].id if len(rows) > n and items else None)


def audit_page(store: SqlRegistryStore, name: str | None = None, limit: int = 50,
               before: int | None = None) -> Page[AuditEntry]:
    """Audit entries (tags, deletions, forced moves, policies), newest first."""
    n = _limit(limit)
    with store._read() as s:
        q = select(AuditRow).order_by(AuditRow.id.desc()).limit(n + 1)
        if name:
            q = q.where(AuditRow.model_name == name)
        if before is not None:
            q = q.where(AuditRow.id < before)
        rows = list(s.scalars(q))
    items = [AuditEntry(r.id, r.action, r.model_name, r.version, r.actor, r.reason, dict(r.detail), r.at)
             for r in rows[:n]]
    return Page(items, items[-1].id if len(rows) > n and items else None)


def metric_rows(evals: list[EvalAttachment]) -> list[dict[str, Any]]:
    """Attached evaluation results flattened to one row per metric: score and interval when recorded."""
    out = []
    for ev in evals:
        for metric, val in sorted(ev.metrics.items()):
            score = val.get("score") if isinstance(val, dict) else val
            if not isinstance(score, (int, float)) or isinstance(score, bool):
                continue
            row: dict[str, Any] = {"suite": ev.suite, "metric": metric, "score": float(score), "ci_low": None,
                                   "ci_high": None, "n": None, "attached_at": ev.attached_at, "eval_id": ev.id}
            if isinstance(val, dict):
                for key in ("ci_low", "ci_high"):
                    if isinstance(val.get(key), (int, float)):
                        row[key] = float(val[key])
                if isinstance(val.get("n"), int):
                    row["n"] = val["n"]
            out.append(row)
    return out


def version_detail(store: SqlRegistryStore, name: str, version: int | None = None, alias: str | None = None
                   ) -> dict[str, Any]:
    """What `registry show` prints and the version page shows: the version and its evaluations."""
    mv = store.get_version(name, version=version, alias=alias)
    evals = store.evals(name, mv.version)
    return {"version": mv, "evals": evals, "metrics": metric_rows(evals)}

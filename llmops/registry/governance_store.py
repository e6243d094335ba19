"""SQL persistence of alias policies, the audit log and model cards (mixed into `SqlRegistryStore`)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import or_, select

from llmops.registry.artifacts import card_uri, validate_name
from llmops.registry.card import CardInputs, render
from llmops.registry.entities import AliasPolicy, AuditEntry, validate_alias
from llmops.registry.tables import AliasPolicyRow, AuditRow, utcnow

ANY_MODEL = "*"


def _policy_view(r: AliasPolicyRow) -> AliasPolicy:
    return AliasPolicy(r.model_name, r.alias, r.protected, dict(r.gates), r.gates_source, r.updated_by, r.updated_at)


class GovernanceMixin:
    """Needs `_tx`, `_read`, `get_version`, `evals`, `promotions`, `alias_history`, `artifacts`."""

    # --- alias policies ---------------------------------------------------------------
    def set_policy(self, model: str, alias: str, protected: bool, gates: dict[str, Any], gates_source: str,
                   actor: str, reason: str = "") -> AliasPolicy:
        """Create or replace the policy of (model or "*", alias); the change is audited."""
        if model != ANY_MODEL:
            validate_name(model)
        validate_alias(alias)
        with self._tx() as s:
            row = s.scalar(select(AliasPolicyRow).where(AliasPolicyRow.model_name == model,
                                                        AliasPolicyRow.alias == alias).with_for_update())
            before = _policy_view(row).to_dict() if row else None
            if row is None:
                row = AliasPolicyRow(model_name=model, alias=alias)
                s.add(row)
            row.protected, row.gates, row.gates_source = bool(protected), gates, gates_source
            row.updated_by, row.updated_at = actor, utcnow()
            s.add(AuditRow(action="policy", model_name=model, version=None, actor=actor, reason=reason or "",
                           detail={"alias": alias, "protected": bool(protected), "gates": gates,
                                   "gates_source": gates_source, "before": before}))
            s.flush()
            return _policy_view(row)

    def policy(self, model: str, alias: str) -> AliasPolicy | None:
        """The policy guarding `model@alias`: the model's own, else the one for every model."""
        with self._read() as s:
            rows = {r.model_name: r for r in s.scalars(select(AliasPolicyRow).where(
                AliasPolicyRow.alias == alias, or_(AliasPolicyRow.model_name == model,
                                                   AliasPolicyRow.model_name == ANY_MODEL)))}
            row = rows.get(model) or rows.get(ANY_MODEL)
            return _policy_view(row) if row else None

    def policies(self, model: str | None = None) -> list[AliasPolicy]:
        with self._read() as s:
            q = select(AliasPolicyRow).order_by(AliasPolicyRow.model_name, AliasPolicyRow.alias)
            if model:
                q = q.where(or_(AliasPolicyRow.model_name == model, AliasPolicyRow.model_name == ANY_MODEL))
            return [_policy_view(r) for r in s.scalars(q)]

    # --- audit ------------------------------------------------------------------------
    def audit_log(self, model: str | None = None) -> list[AuditEntry]:
        with self._read() as s:
            q = select(AuditRow).order_by(AuditRow.id)
            if model:
                q = q.where(AuditRow.model_name == model)
            return [AuditEntry(r.id, r.action, r.model_name, r.version, r.actor, r.reason, dict(r.detail), r.at)
                    for r in s.scalars(q)]

    # --- model cards ------------------------------------------------------------------
    def card_inputs(self, name: str, version: int) -> CardInputs:
        mv = self.get_version(name, version)
        return CardInputs(mv, self.evals(name, version),
                          [p for p in self.promotions(name) if p.version == version],
                          [e for e in self.alias_history(name) if version in (e.from_version, e.to_version)])

    def refresh_card(self, name: str, version: int) -> str:
        """(Re)write the card of a version beside its artifact; returns its text."""
        text = render(self.card_inputs(name, version))
        self.artifacts.write_text(card_uri(name, version), text)
        return text

    def card(self, name: str, version: int) -> str:
        """The stored card (written anew if missing, e.g. for versions older than cards)."""
        return self.artifacts.read_text(card_uri(name, version)) or self.refresh_card(name, version)

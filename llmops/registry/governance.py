"""Who may change the registry, and how a protected alias moves.

Actors are *principals* (an id and a role) produced by an injected ``authenticate(token)``
callable: the CLI and the HTTP service wire it to the feedback store's API keys, so the
registry never imports another layer-3 package. Roles are those of the feedback service
(admin, service, rater); `PERMISSIONS` denies any action it does not list.

A protected alias (see `AliasPolicy`) moves only through promotion, judged by the gates
stored with its policy. ``registry alias`` on it is refused unless an admin forces the
move with a reason; the force is recorded in the alias log and in the audit log.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llmops.errors import UserError
from llmops.registry.entities import AliasEvent, PromotionRecord, PromotionRefused, RegistryError, validate_alias
from llmops.registry.gates import AliasGates, Comparator, GateEvaluator, load_gates
from llmops.registry.interface import RegistryStore


class Unauthorized(UserError):
    """No valid credentials (HTTP 401)."""


class Forbidden(UserError):
    """Valid credentials whose role may not do this (HTTP 403)."""


@dataclass(frozen=True)
class Principal:
    """An authenticated actor: `id` is what the audit logs record."""

    id: str
    role: str


Authenticate = Callable[[str], Principal]

READ, REGISTER, EVALS, TAG, PROMOTE, ALIAS, DELETE, POLICY, FORCE = (
    "read", "register", "attach_eval", "tag", "promote", "alias", "delete", "policy", "force")
PERMISSIONS: dict[str, frozenset[str]] = {
    READ: frozenset({"admin", "service", "rater"}),
    REGISTER: frozenset({"admin", "service"}),
    EVALS: frozenset({"admin", "service"}),
    TAG: frozenset({"admin", "service"}),
    PROMOTE: frozenset({"admin", "service"}),
    ALIAS: frozenset({"admin", "service"}),
    DELETE: frozenset({"admin"}),
    POLICY: frozenset({"admin"}),
    FORCE: frozenset({"admin"}),
}


def authorize(principal: Principal, action: str) -> Principal:
    if principal.role not in PERMISSIONS.get(action, frozenset()):
        raise Forbidden(f"`{principal.id}` (role {principal.role}) may not {action} in the registry")
    return principal


def local_principal(actor: str | None) -> Principal:
    """In-process callers (training, the loop) hold the database credentials already: a
    service-role principal named after them. They can never force or change policies."""
    return Principal(f"local:{actor or 'python'}", "service")


def promote(
    store: RegistryStore, principal: Principal, name: str, version: int, alias: str,
    gates_file: str | Path | None = None, reason: str = "", force: bool = False,
    compare: Comparator | None = None,
) -> PromotionRecord:
    """Point `alias` at `version` if its gates pass (the policy's gates for a protected alias).

    Refusals raise `PromotionRefused` naming every failing rule; ``force`` skips failing
    gates only for an admin and needs a reason. Every attempt lands in the promotion log.
    """
    authorize(principal, PROMOTE)
    validate_alias(alias)
    policy = store.policy(name, alias)
    file_gates = load_gates(gates_file).aliases.get(alias, AliasGates()) if gates_file else AliasGates()
    refs = [str(gates_file)] if gates_file else []
    if policy is not None:
        # The stored policy always applies; a gates file can only add rules, never replace them.
        gates = AliasGates(rules=[*AliasGates.model_validate(policy.gates).rules, *file_gates.rules])
        refs.insert(0, f"policy:{policy.model}@{policy.alias}" + (f" ({policy.gates_source})" if policy.gates_source
                                                                   else ""))
    else:
        gates = file_gates
    gates_ref = " + ".join(refs) or None
    candidate = store.get_version(name, version=version)
    report = GateEvaluator(store, load_gates(None), compare).evaluate(candidate, alias, gates)

    def record(decision: str, why: str) -> PromotionRecord:
        return store.record_promotion(name, version, alias, decision, principal.id, why, report.to_dict(), gates_ref)

    if force and principal.role not in PERMISSIONS[FORCE]:
        record("refused", f"force by non-admin `{principal.id}`: {reason}")
        raise Forbidden(f"forcing a promotion needs an admin key: `{principal.id}` has role {principal.role}")
    if force and not reason.strip():
        raise RegistryError("a forced promotion needs a --reason (it is audited)")
    if not report.passed and not force:
        record("refused", reason)
        raise PromotionRefused(report.refusal(), report.to_dict())
    forced = force and not report.passed
    why = reason + (f" [forced past: {report.refusal()}]" if forced else "")
    store.set_alias(name, alias, version, actor=principal.id, reason=why, forced=forced,
                    expect_current=report.baseline_version)
    return record("forced" if forced else "accepted", why)


def move_alias(
    store: RegistryStore, principal: Principal, name: str, alias: str, version: int | None,
    reason: str = "", force: bool = False,
) -> AliasEvent:
    """Move or remove an alias without gates: refused on a protected alias unless an admin forces it."""
    authorize(principal, ALIAS)
    validate_alias(alias)
    policy = store.policy(name, alias)
    forced = False
    if policy is not None and policy.protected:
        if not force:
            raise Forbidden(f"alias `{alias}` of `{name}` is protected: it moves only through `registry promote` "
                            f"(gates: {policy.gates_source or 'policy'}); an admin may force it with a reason")
        authorize(principal, FORCE)
        if not reason.strip():
            raise RegistryError(f"forcing protected alias `{alias}` needs a --reason (it is audited)")
        forced = True
    return store.set_alias(name, alias, version, actor=principal.id, reason=reason, forced=forced)


def set_policy(
    store: RegistryStore, principal: Principal, model: str, alias: str, gates_file: str | Path | None,
    protected: bool = True, reason: str = "",
) -> Any:
    """Store the policy of `model@alias` ("*" for every model): protection and the gates guarding it."""
    authorize(principal, POLICY)
    gates = AliasGates()
    if gates_file:
        config = load_gates(gates_file)
        if alias not in config.aliases:
            raise RegistryError(f"{gates_file}: no gates for alias `{alias}` (has {sorted(config.aliases)})")
        gates = config.aliases[alias]
    return store.set_policy(model, alias, protected, gates.model_dump(mode="json", exclude_none=True),
                            str(gates_file or ""), principal.id, reason)

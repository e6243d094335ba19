"""Who may do what in the UI: one table over the feedback service's roles, denying by default.

Every page and action names exactly one `UiAction` (the `guard` dependency); an action
missing from `UI_POLICY` is denied to everyone, admin included. Raters see (read-only),
admins act; `client` keys (generation only) see nothing.
"""

from __future__ import annotations

from enum import Enum

from llmops.feedback.policies import Principal, Role


class UiAction(str, Enum):
    VIEW = "ui:view"  # every read-only page
    RUNS_REFRESH = "ui:runs:refresh"  # rescan the runs folders into the index
    REGISTRY_ALIAS = "ui:registry:alias"  # promote a version / move an alias (through the gates)


READERS = frozenset({Role.RATER, Role.SERVICE, Role.ADMIN})
ADMINS = frozenset({Role.ADMIN})

UI_POLICY: dict[UiAction, frozenset[Role]] = {
    UiAction.VIEW: READERS,
    UiAction.RUNS_REFRESH: ADMINS,
    UiAction.REGISTRY_ALIAS: ADMINS,
}


def ui_allowed(principal: Principal | None, action: UiAction) -> bool:
    """Whether `principal` may do `action` (False for unlisted actions and anonymous callers)."""
    return principal is not None and principal.role in UI_POLICY.get(action, frozenset())

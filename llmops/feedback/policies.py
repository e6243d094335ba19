"""Who may do what: one table, denying by default.

Every endpoint names exactly one `Action`; `authorize` allows it only when the
principal's role is listed for that action. An action missing from `POLICY` (a new
endpoint someone forgot to list) is denied to everyone, admin included — the test of
the role × endpoint matrix catches it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from llmops.feedback.errors import Forbidden


class Role(str, Enum):
    ADMIN = "admin"
    SERVICE = "service"
    RATER = "rater"
    CLIENT = "client"  # may call the model server's generation endpoints, nothing of the feedback store


class Action(str, Enum):
    ITEMS_READ = "items:read"
    ITEMS_CREATE = "items:create"
    RATINGS_CREATE = "ratings:create"
    COMPARISONS_CREATE = "comparisons:create"
    EXPORT_READ = "export:read"
    KEYS_MANAGE = "keys:manage"
    GENERATE = "generate"  # the model server's /v1/completions and /v1/chat/completions
    ITEMS_READ_ALL = "items:read-all"  # unredacted items: model versions, metadata (user ids, system prompts)
    PROJECTS_READ = "projects:read"  # a project's guidelines, questions, settings; own progress
    PROJECTS_MANAGE = "projects:manage"  # create/update projects, routing, gold answers
    PROJECT_ITEMS_ADD = "projects:add-items"  # put existing items into a project
    QUEUE_WORK = "queue:work"  # claim the next item, skip, answer
    CORRECTIONS_CREATE = "corrections:create"
    QUALITY_READ = "quality:read"  # agreement and accuracy of every rater (names of others)


POLICY: dict[Action, frozenset[Role]] = {
    Action.ITEMS_READ: frozenset({Role.RATER, Role.SERVICE, Role.ADMIN}),
    Action.RATINGS_CREATE: frozenset({Role.RATER, Role.SERVICE, Role.ADMIN}),
    Action.COMPARISONS_CREATE: frozenset({Role.RATER, Role.SERVICE, Role.ADMIN}),
    Action.ITEMS_CREATE: frozenset({Role.SERVICE, Role.ADMIN}),
    Action.EXPORT_READ: frozenset({Role.ADMIN}),
    Action.KEYS_MANAGE: frozenset({Role.ADMIN}),
    Action.GENERATE: frozenset({Role.CLIENT, Role.SERVICE, Role.ADMIN}),
    Action.ITEMS_READ_ALL: frozenset({Role.SERVICE, Role.ADMIN}),
    Action.PROJECTS_READ: frozenset({Role.RATER, Role.SERVICE, Role.ADMIN}),
    Action.PROJECTS_MANAGE: frozenset({Role.ADMIN}),
    Action.PROJECT_ITEMS_ADD: frozenset({Role.SERVICE, Role.ADMIN}),
    Action.QUEUE_WORK: frozenset({Role.RATER, Role.SERVICE, Role.ADMIN}),
    Action.CORRECTIONS_CREATE: frozenset({Role.RATER, Role.SERVICE, Role.ADMIN}),
    Action.QUALITY_READ: frozenset({Role.ADMIN}),
}


@dataclass(frozen=True)
class Principal:
    """The authenticated caller: its key, role and the rater identity its feedback is filed under."""

    key_id: str
    role: Role
    rater_id: int
    rater_name: str


def allowed(principal: Principal | None, action: Action) -> bool:
    return principal is not None and principal.role in POLICY.get(action, frozenset())


def authorize(principal: Principal, action: Action) -> None:
    if not allowed(principal, action):
        raise Forbidden(f"role {principal.role.value!r} may not {action.value}")

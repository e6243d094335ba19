"""Wire the registry's injected `authenticate(token) -> Principal` to the feedback store's API keys.

The registry (layer 3) may not import the feedback package (same layer); the CLI may.
Roles are the feedback service's: admin, service, rater (see `llmops.registry.governance`);
a ``client`` key (model-server callers) has no registry role and is refused there.
"""

from __future__ import annotations

import os

from llmops.errors import UserError

API_KEY_ENV = "LLMOPS_API_KEY"


def key_authenticator(db_url: str | None):
    """`authenticate(token) -> Principal` backed by the API keys in the database at `db_url`."""
    from llmops.db import session_factory
    from llmops.db.schema import ensure_all
    from llmops.feedback.auth import verify_in_session
    from llmops.feedback.errors import Unauthenticated
    from llmops.registry.governance import Principal, Unauthorized
    from llmops.settings import database_url

    url = database_url(db_url)
    ensure_all(url)  # the key table lives in the feedback store's schema
    sessions = session_factory(url)

    def authenticate(token: str) -> Principal:
        if not token:
            raise Unauthorized("missing API key")
        with sessions() as session, session.begin():
            try:
                p = verify_in_session(session, token)  # uncached: a revocation counts at once
            except Unauthenticated as exc:
                raise Unauthorized(f"API key refused: {exc}") from None
        return Principal(f"key:{p.key_id}:{p.rater_name}", p.role.value)

    return authenticate


def cli_principal(db_url: str | None):
    """The principal of $LLMOPS_API_KEY (writes from the CLI are never anonymous)."""
    token = os.environ.get(API_KEY_ENV, "").strip()
    if not token:
        raise UserError(f"this registry command changes the registry: set {API_KEY_ENV} to an API key "
                        "(an admin creates one with `llmops feedback keys create --role service`)")
    return key_authenticator(db_url)(token)

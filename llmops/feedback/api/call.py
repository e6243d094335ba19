"""One request's unit of work: authenticate, authorize, run, record the idempotent answer, commit.

Everything happens in ONE transaction, so a write is acknowledged only after its row
and its idempotency record are committed together, and a retry with the same
``Idempotency-Key`` finds that record instead of writing again. The key is scoped to
the caller's rater identity.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import Depends, Header, Request
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from llmops.feedback import metrics
from llmops.feedback.auth import authenticate, parse_token
from llmops.feedback.errors import Invalid, Unauthenticated
from llmops.feedback.models import IdempotencyRecord
from llmops.feedback.policies import Action, Principal, authorize
from llmops.feedback.schemas import MAX_IDEMPOTENCY_KEY_CHARS
from llmops.feedback.store import integrity_error

_bearer = HTTPBearer(auto_error=False, description="API key from `llmops feedback keys create`")


@dataclass
class Call:
    action: Action
    token: str
    idempotency_key: str | None
    sessions: sessionmaker[Session]
    route: str

    def _principal(self, session: Session) -> Principal:
        principal = authenticate(session, self.token)
        authorize(principal, self.action)
        return principal

    def read(self, fn: Callable[[Session, Principal], Any]) -> Any:
        with self.sessions() as session, session.begin():
            return fn(session, self._principal(session))

    def write(
        self,
        fn: Callable[[Session, Principal], Any],
        payload: BaseModel,
        *,
        status: int = 201,
        kind: str,
    ) -> JSONResponse:
        fingerprint = hashlib.sha256(
            json.dumps([self.route, payload.model_dump(mode="json")], sort_keys=True, separators=(",", ":")).encode()
        ).hexdigest()
        principal: Principal | None = None
        try:
            with self.sessions() as session, session.begin():
                principal = self._principal(session)
                if self.idempotency_key:
                    record = session.get(IdempotencyRecord, (principal.rater_id, self.idempotency_key))
                    if record is not None:
                        return _replay(record, fingerprint)
                body = fn(session, principal)
                body = body.model_dump(mode="json") if isinstance(body, BaseModel) else body
                if self.idempotency_key:
                    session.add(
                        IdempotencyRecord(
                            rater_id=principal.rater_id,
                            key=self.idempotency_key,
                            request_sha256=fingerprint,
                            status_code=status,
                            response_body=body,
                        )
                    )
                    session.flush()
            # Committed: only now is the write acknowledged.
        except IntegrityError as exc:
            if self.idempotency_key and principal is not None:
                # A concurrent request with the same key won the race: answer as it did.
                with self.sessions() as session, session.begin():
                    record = session.get(IdempotencyRecord, (principal.rater_id, self.idempotency_key))
                    if record is not None:
                        return _replay(record, fingerprint)
            raise integrity_error(exc) from exc
        metrics.WRITES.labels(kind).inc()
        return JSONResponse(body, status_code=status)


def _replay(record: IdempotencyRecord, fingerprint: str) -> JSONResponse:
    if record.request_sha256 != fingerprint:
        raise Invalid(
            "Idempotency-Key was already used with a different request body or endpoint",
            field="Idempotency-Key",
            code="idempotency_key_reused",
        )
    metrics.REPLAYS.inc()
    return JSONResponse(record.response_body, status_code=record.status_code, headers={"Idempotent-Replayed": "true"})


def call_for(action: Action) -> Callable[..., Call]:
    """A dependency giving the route a `Call` for `action` (401 before any database access if no key)."""

    def dependency(
        request: Request,
        credentials: HTTPAuthorizationCredentials | None = Depends(_bearer),
        idempotency_key: str | None = Header(
            None,
            alias="Idempotency-Key",
            max_length=MAX_IDEMPOTENCY_KEY_CHARS,
            pattern="^[!-~]+$",  # printable ASCII, no spaces
            description="Retry-safe writes: the same key and body return the first answer and store nothing twice.",
        ),
    ) -> Call:
        if credentials is None:
            raise Unauthenticated("missing bearer API key (Authorization: Bearer llmf_...)")
        parse_token(credentials.credentials)
        route = getattr(request.scope.get("route"), "path", request.url.path)
        return Call(action, credentials.credentials, idempotency_key or None, request.app.state.sessions, route)

    return dependency

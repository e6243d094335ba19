from __future__ import annotations

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import JSONResponse

from llmops.feedback import auth
from llmops.feedback.api.call import Call, call_for
from llmops.feedback.api.routes import ERRORS
from llmops.feedback.policies import Action
from llmops.feedback.schemas import KeyIn, KeyOut

router = APIRouter(prefix="/v1/keys", tags=["keys"], responses=ERRORS)


def _out(k) -> KeyOut:
    return KeyOut(
        key_id=k.key_id,
        role=k.role,
        name=k.rater.name,
        created_at=k.created_at.isoformat(),
        revoked_at=k.revoked_at.isoformat() if k.revoked_at else None,
    )


@router.post("", status_code=201, response_model=KeyOut, summary="Create an API key (the secret is shown once)")
async def create_key(body: KeyIn, call: Call = Depends(call_for(Action.KEYS_MANAGE))) -> JSONResponse:
    def write(s, _p):
        new = auth.create_key(s, body.role, body.name)
        return KeyOut(key_id=new.key_id, role=new.role, name=new.name, created_at=new.created_at.isoformat(), key=new.token)

    # The secret is answered once and never stored: the idempotency record keeps the answer
    # without it, so a replay says the key exists but cannot show it again.
    return await call.write(write, body, kind="key", stored=_without_secret)


def _without_secret(body: dict) -> dict:
    return {**body, "key": None}


@router.get("", response_model=list[KeyOut], summary="List API keys (never their secrets)")
def list_keys(call: Call = Depends(call_for(Action.KEYS_MANAGE))) -> list[KeyOut]:
    return call.read(lambda s, _p: [_out(k) for k in auth.list_keys(s)])


@router.delete("/{key_id}", response_model=KeyOut, summary="Revoke an API key")
def revoke_key(
    request: Request,
    key_id: str = Path(pattern="^[0-9a-f]{1,32}$"),
    call: Call = Depends(call_for(Action.KEYS_MANAGE)),
) -> KeyOut:
    def revoke(s, _p):
        return _out(auth.revoke_key(s, key_id))

    out = call.transact(revoke)
    request.app.state.verifier.forget()  # at once on this process; others within the cache TTL
    return out

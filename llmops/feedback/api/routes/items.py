from __future__ import annotations

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import JSONResponse

from llmops.feedback import store
from llmops.feedback.api.call import Call, call_for
from llmops.feedback.api.routes import ERRORS
from llmops.feedback.policies import Action
from llmops.feedback.schemas import (
    DEFAULT_PAGE_LIMIT,
    ID_MAX,
    MAX_PAGE_LIMIT,
    BulkItemsIn,
    BulkOut,
    BulkResult,
    ItemCreated,
    ItemIn,
    ItemOut,
    ItemPage,
)
from llmops.feedback.api.routes.bulk import bulk_out
from llmops.feedback.views import for_principal, page_for_principal

router = APIRouter(prefix="/v1/items", tags=["items"], responses=ERRORS)


@router.post("", status_code=201, response_model=ItemCreated, summary="Create an item with its responses")
async def create_item(body: ItemIn, call: Call = Depends(call_for(Action.ITEMS_CREATE))) -> JSONResponse:
    return await call.write(lambda s, p: store.create_item(s, body, p.rater_id), body, kind="item")


@router.post("/bulk", response_model=BulkOut, summary="Create many items; one result per element")
async def create_items_bulk(body: BulkItemsIn, call: Call = Depends(call_for(Action.ITEMS_CREATE))) -> JSONResponse:
    def write(s, p):
        results = store.bulk(s, body.items, lambda s_, item: store.create_item(s_, item, p.rater_id))
        return bulk_out(results, lambda r, i: BulkResult(index=i, status=201, item_id=r.item_id, response_ids=r.response_ids))

    return await call.write(write, body, status=200, kind="items_bulk")


@router.get("", response_model=ItemPage, summary="List items (keyset pagination; raters get the blind view)")
def list_items(
    cursor: str | None = Query(None, max_length=64, description="next_cursor of the previous page"),
    limit: int = Query(DEFAULT_PAGE_LIMIT, ge=1, le=MAX_PAGE_LIMIT),
    call: Call = Depends(call_for(Action.ITEMS_READ)),
) -> ItemPage:
    return call.read(lambda s, p: page_for_principal(store.list_items(s, cursor, limit), p, call.options))


@router.get("/next", response_model=ItemOut | None, summary="The next item the caller has not fully rated")
def next_item(call: Call = Depends(call_for(Action.ITEMS_READ))) -> ItemOut | None:
    def read(s, p):
        item = store.next_item_for(s, p.rater_id)
        return None if item is None else for_principal(item, p, call.options)

    return call.read(read)


@router.get("/{item_id}", response_model=ItemOut, summary="One item with its responses")
def get_item(item_id: int = Path(ge=1, le=ID_MAX), call: Call = Depends(call_for(Action.ITEMS_READ))) -> ItemOut:
    return call.read(lambda s, p: for_principal(store.get_item(s, item_id), p, call.options))

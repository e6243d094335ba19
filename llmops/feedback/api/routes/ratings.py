from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from llmops.feedback import store
from llmops.feedback.api.call import Call, call_for
from llmops.feedback.api.routes import ERRORS
from llmops.feedback.api.routes.bulk import bulk_out
from llmops.feedback.api.write_route import JSONWriteRoute
from llmops.feedback.policies import Action
from llmops.feedback.schemas import BulkOut, BulkRatingsIn, BulkResult, Created, RatingIn

router = APIRouter(prefix="/v1/ratings", tags=["ratings"], responses=ERRORS, route_class=JSONWriteRoute)


@router.post("", status_code=201, response_model=Created, summary="Rate one response on its item's scale")
async def create_rating(body: RatingIn, call: Call = Depends(call_for(Action.RATINGS_CREATE))) -> JSONResponse:
    return await call.write(lambda s, p: {"id": store.add_rating(s, body, p.rater_id)}, body, kind="rating", core=True)


@router.post("/bulk", response_model=BulkOut, summary="Many ratings; one result per element")
async def create_ratings_bulk(body: BulkRatingsIn, call: Call = Depends(call_for(Action.RATINGS_CREATE))) -> JSONResponse:
    def write(s, p):
        results = store.bulk(s, body.ratings, lambda s_, r: store.add_rating(s_, r, p.rater_id))
        return bulk_out(results, lambda rid, i: BulkResult(index=i, status=201, id=rid))

    return await call.write(write, body, status=200, kind="ratings_bulk")

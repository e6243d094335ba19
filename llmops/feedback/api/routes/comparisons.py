from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from llmops.feedback import store
from llmops.feedback.api.call import Call, call_for
from llmops.feedback.api.routes import ERRORS
from llmops.feedback.api.write_route import JSONWriteRoute
from llmops.feedback.policies import Action
from llmops.feedback.schemas import ComparisonIn, Created

router = APIRouter(prefix="/v1/comparisons", tags=["comparisons"], responses=ERRORS, route_class=JSONWriteRoute)


@router.post(
    "",
    status_code=201,
    response_model=Created,
    summary="Compare responses of one item: ranking (best first), chosen/rejected, or tie",
)
async def create_comparison(body: ComparisonIn, call: Call = Depends(call_for(Action.COMPARISONS_CREATE))) -> JSONResponse:
    return await call.write(lambda s, p: {"id": store.add_comparison(s, body, p.rater_id)}, body, kind="comparison")

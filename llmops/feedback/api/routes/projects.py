"""Projects, the rater queue (next / skip / answer), progress, gold answers, quality, corrections.

`router` is what raters and services use; `admin_router` (create/change projects, gold
answers, quality) is mounted only with the admin API, like key management and exports.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Path, Query
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from llmops.feedback import answers, assignment, projects, store
from llmops.feedback.api.call import Call, call_for
from llmops.feedback.api.routes import ERRORS
from llmops.feedback.api.routes.bulk import bulk_out
from llmops.feedback.policies import Action, Role
from llmops.feedback.project_schemas import (
    MAX_CLAIM_COUNT,
    AnswerIn,
    AnswerOut,
    AnswersIn,
    AnswersOut,
    CorrectionIn,
    GoldIn,
    NextOut,
    ProgressOut,
    ProjectIn,
    ProjectItemsIn,
    ProjectOut,
    ProjectUpdate,
)
from llmops.feedback.schemas import ID_MAX, PROJECT_NAME_PATTERN, BulkOut, BulkResult, Created, Strict
from llmops.feedback.views import for_principal

router = APIRouter(tags=["projects"], responses=ERRORS)
admin_router = APIRouter(tags=["projects"], responses=ERRORS)
ProjectPath = Path(pattern=PROJECT_NAME_PATTERN, description="Project name")
ItemPath = Path(ge=1, le=ID_MAX)


class _Target(Strict):
    """What a body-less write is about (the idempotency fingerprint)."""

    project: str
    item_id: int | None = None
    count: int | None = None


@admin_router.post("/v1/projects", status_code=201, response_model=ProjectOut, summary="Create a project (admin)")
async def create_project(body: ProjectIn, call: Call = Depends(call_for(Action.PROJECTS_MANAGE))) -> JSONResponse:
    return await call.write(lambda s, _p: projects.create_project(s, body), body, kind="project")


@router.get("/v1/projects", response_model=list[ProjectOut], summary="List projects")
def list_projects(call: Call = Depends(call_for(Action.PROJECTS_READ))) -> list[ProjectOut]:
    return call.read(lambda s, _p: projects.list_projects(s))


@router.get("/v1/projects/{project}", response_model=ProjectOut, summary="A project: guidelines, questions, settings")
def get_project(project: str = ProjectPath, call: Call = Depends(call_for(Action.PROJECTS_READ))) -> ProjectOut:
    return call.read(lambda s, _p: projects.project_out(projects.get_project(s, project)))


@admin_router.patch("/v1/projects/{project}", response_model=ProjectOut, summary="Change a project's settings (admin)")
async def update_project(body: ProjectUpdate, project: str = ProjectPath,
                         call: Call = Depends(call_for(Action.PROJECTS_MANAGE))) -> ProjectOut:
    return await run_in_threadpool(call.transact, lambda s, _p: projects.update_project(s, project, body))


@router.post("/v1/projects/{project}/items", response_model=BulkOut, summary="Put existing items into the project")
async def add_items(body: ProjectItemsIn, project: str = ProjectPath,
                    call: Call = Depends(call_for(Action.PROJECT_ITEMS_ADD))) -> JSONResponse:
    def write(s, _p):
        results = projects.add_items(s, project, body.item_ids)
        return bulk_out(results, lambda item_id, i: BulkResult(index=i, status=200, item_id=item_id))

    return await call.write(write, body, status=200, kind="project_items")


@admin_router.put("/v1/projects/{project}/items/{item_id}/gold", summary="Mark an item as gold with its known answers (admin)")
async def set_gold(body: GoldIn, project: str = ProjectPath, item_id: int = ItemPath,
                   call: Call = Depends(call_for(Action.PROJECTS_MANAGE))) -> dict:
    gold = await run_in_threadpool(call.transact, lambda s, _p: projects.set_gold(s, project, item_id, body))
    return {"item_id": item_id, "gold": gold}


@admin_router.delete("/v1/projects/{project}/items/{item_id}/gold", summary="Unmark a gold item (admin)")
async def unset_gold(project: str = ProjectPath, item_id: int = ItemPath,
                     call: Call = Depends(call_for(Action.PROJECTS_MANAGE))) -> dict:
    await run_in_threadpool(call.transact, lambda s, _p: projects.set_gold(s, project, item_id, None))
    return {"item_id": item_id, "gold": None}


@router.post("/v1/projects/{project}/next", response_model=NextOut,
             summary="Claim the caller's next item(s) (their open claims first; never one answered or skipped)")
async def next_item(project: str = ProjectPath,
                    count: int = Query(1, ge=1, le=MAX_CLAIM_COUNT,
                                       description="Hold up to this many items at once (all in `items`)."),
                    call: Call = Depends(call_for(Action.QUEUE_WORK))) -> JSONResponse:
    def write(s, p):
        proj = projects.get_project(s, project)
        claims = assignment.claim_batch(s, proj, p.rater_id, count)
        if not claims:
            return NextOut(project=proj.name, item=None)
        items = [for_principal(store.get_item(s, c.item_id), p, call.options, show_models=proj.show_model_metadata)
                 for c in claims]
        return NextOut(project=proj.name, item=items[0], items=items, expires_at=claims[0].expires_at.isoformat())

    target = _Target(project=project, count=count if count != 1 else None)
    return await call.write(write, target, status=200, kind="claim")


@router.post("/v1/projects/{project}/items/{item_id}/skip", summary="Skip an item: it never comes back to the caller")
async def skip_item(project: str = ProjectPath, item_id: int = ItemPath,
                    call: Call = Depends(call_for(Action.QUEUE_WORK))) -> JSONResponse:
    def write(s, p):
        proj = projects.get_project(s, project)
        projects.project_item(s, proj, item_id)
        return {"item_id": item_id, "state": assignment.skip(s, proj, item_id, p.rater_id)}

    return await call.write(write, _Target(project=project, item_id=item_id), status=200, kind="skip")


@router.post("/v1/projects/{project}/items/{item_id}/answer", response_model=AnswerOut,
             summary="Answer an item (ratings, comparison, corrections); one result per element")
async def answer_item(body: AnswerIn, project: str = ProjectPath, item_id: int = ItemPath,
                      call: Call = Depends(call_for(Action.QUEUE_WORK))) -> JSONResponse:
    return await call.write(lambda s, p: answers.submit_answer(s, project, item_id, body, p.rater_id), body,
                            status=200, kind="answer")


@router.post("/v1/projects/{project}/answers", response_model=AnswersOut,
             summary="Answer several items in one request; one result per item (each also per part)")
async def answer_items(body: AnswersIn, project: str = ProjectPath,
                       call: Call = Depends(call_for(Action.QUEUE_WORK))) -> JSONResponse:
    return await call.write(lambda s, p: answers.submit_answers(s, project, body.answers, p.rater_id), body,
                            status=200, kind="answers")


@router.get("/v1/projects/{project}/progress", response_model=ProgressOut,
            summary="Progress of the project and per rater (raters see their own row)")
def get_progress(project: str = ProjectPath, call: Call = Depends(call_for(Action.PROJECTS_READ))) -> ProgressOut:
    def read(s, p):
        own = p.rater_id if p.role == Role.RATER else None
        return assignment.progress(s, projects.get_project(s, project), own)

    return call.read(read)


@admin_router.get("/v1/projects/{project}/quality", summary="Agreement per question, each rater against the rest, gold accuracy")
def get_quality(project: str = ProjectPath, call: Call = Depends(call_for(Action.QUALITY_READ))) -> dict:
    from llmops.feedback.quality import project_quality

    return call.read(lambda s, _p: project_quality(s, project))


@router.post("/v1/corrections", status_code=201, response_model=Created, tags=["corrections"],
             summary="A corrected (better) version of a response")
async def create_correction(body: CorrectionIn, call: Call = Depends(call_for(Action.CORRECTIONS_CREATE))) -> JSONResponse:
    return await call.write(lambda s, p: {"id": answers.add_correction(s, body, p.rater_id)}, body, kind="correction")

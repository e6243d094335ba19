"""A project's guidelines as safe HTML for the rater page (`llmops.feedback.guidelines`)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Path

from llmops.feedback import projects
from llmops.feedback.api.call import Call, call_for
from llmops.feedback.api.routes import ERRORS
from llmops.feedback.guidelines import render_guidelines
from llmops.feedback.policies import Action
from llmops.feedback.schemas import PROJECT_NAME_PATTERN

router = APIRouter(tags=["projects"], responses=ERRORS)


@router.get("/v1/projects/{project}/guidelines", summary="A project's guidelines: the Markdown and safe HTML of it")
def get_guidelines(project: str = Path(pattern=PROJECT_NAME_PATTERN, description="Project name"),
                   call: Call = Depends(call_for(Action.PROJECTS_READ))) -> dict:
    def read(s, _p):
        markdown = projects.get_project(s, project).guidelines or ""
        return {"project": project, "markdown": markdown, "html": render_guidelines(markdown)}

    return call.read(read)

"""Record every served generation in the feedback store, so raters can judge it.

One request becomes one feedback item per prompt, with one response per choice, in one
transaction; the answer is sent only after that commit, so every response id a client
receives exists. If the database cannot commit, the request fails with 503 (nothing was
recorded; retrying is safe) rather than returning ids that do not exist.

What is stored: the item's ``prompt`` is the completion prompt, or for chat the last
message (earlier user/assistant turns go to ``context`` as a transcript, and the full
message list, system prompts included, to ``metadata.messages``: system prompts and the
end-user id stay in metadata, which raters do not see), so an exported preference pair has the prompt a person would
read. ``model`` is the reference the server was started with (what monitoring groups
by, e.g. ``registry:docs@production``); ``model_version`` is the version that answered
(``docs/3``, or the model hash for non-registry models). Each item is routed into a rating
project: the one given by ``--feedback-project``, else by the projects' routing rules (model
name/alias, tags, sampling rate), else none — served traffic reaches no rater queue unless a
project asks for it.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy.exc import DBAPIError

from llmops.feedback.schemas import MAX_CONTEXT_CHARS, MAX_RESPONSE_CHARS, ItemIn, ResponseIn
from llmops.feedback.store import FeedbackStore, create_item
from llmops.serve.errors import ServeError
from llmops.serve.generation import GenRequest, GenResult

SOURCE = "llmops.serve"
log = logging.getLogger(__name__)


def _prompt_and_context(req: GenRequest, index: int) -> tuple[str, str | None]:
    if req.kind == "completion":
        return req.prompts[index], None
    messages = req.messages or []
    last = messages[-1]["content"] if messages else ""
    # System prompts are the operator's, not the conversation: they stay in metadata (hidden from raters).
    earlier = "\n".join(f"{m['role']}: {m['content']}" for m in messages[:-1] if m["role"] != "system") or None
    prompt = last or req.rendered[0].text  # an empty last turn: store what the model saw
    return prompt, earlier[:MAX_CONTEXT_CHARS] if earlier else None


class Recorder:
    """Writes generations to the feedback store. `project`: put every item into that rating project
    (default: the projects' routing rules decide, `llmops.feedback.projects.route_for`)."""

    def __init__(self, db_url: str | None, project: str | None = None) -> None:
        self.store = FeedbackStore(db_url, migrate=False)  # the app migrated already
        self.project = project
        if project is not None:
            from llmops.errors import UserError
            from llmops.feedback.errors import NotFound
            from llmops.feedback.projects import get_project

            try:
                with self.store.transaction() as session:
                    get_project(session, project)
            except NotFound:
                raise UserError(f"no feedback project named {project!r}: create it first "
                                "(`llmops feedback projects create FILE` or POST /v1/projects)") from None

    def record(self, req: GenRequest, result: GenResult, request_id: str, user: str | None) -> tuple[list[int], list[int]]:
        """Store the request's items; returns (item ids, response ids in choice order)."""
        model = result.model
        params: dict[str, Any] = {
            "temperature": req.temperature, "top_p": req.top_p, "max_tokens": result.max_tokens,
            "stop": list(req.stop), "n": req.n, "seed": result.seed, "seed_requested": req.seed,
        }
        items = []
        for i, choices in enumerate(result.choices):
            prompt, context = _prompt_and_context(req, i)
            meta: dict[str, Any] = {
                "source": SOURCE, "endpoint": req.kind, "request_id": request_id, "prompt_index": i,
                "resolved_ref": model.resolved_ref, "model_sha256": model.sha256,
                "prompt_tokens": result.prompt_tokens[i],
            }
            if user:
                meta["user"] = user
            if req.kind == "chat":
                meta["messages"] = req.messages
            responses = []
            for c in choices:
                p = dict(params, finish_reason=c.finish_reason, completion_tokens=c.completion_tokens)
                text = c.text
                if len(text) > MAX_RESPONSE_CHARS:
                    text, p["stored_truncated"] = text[:MAX_RESPONSE_CHARS], True
                responses.append(ResponseIn(text=text, model=model.served_ref, model_version=model.version,
                                            generation_params=p))
            items.append(ItemIn(prompt=prompt, context=context, metadata=meta, responses=responses,
                                project=self.project))
        try:
            with self.store.transaction() as session:
                created = [create_item(session, item) for item in items]
        except DBAPIError as exc:
            log.error("recording a generation failed: %s", type(exc.orig).__name__)
            raise ServeError(503, "the feedback database could not record this generation; retry",
                             code="database_unavailable") from None
        return [c.item_id for c in created], [rid for c in created for rid in c.response_ids]

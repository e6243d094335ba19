"""A rater's answer to a project item: ratings (with per-response critiques), a comparison (with its own
critique) and corrected responses, stored element by element; the item is done for the rater once
every *required* question has an answer in the store.

Completeness is read back from the stored rows, not from one request, so an answer given in
parts (ratings now, the comparison later, or through the plain ``/v1/ratings`` endpoint) completes
the item when its last required part arrives. Each element is written in its own savepoint:
a bad element fails alone and is reported with its index, as the bulk endpoints do.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from llmops.feedback import assignment
from llmops.feedback.errors import Conflict, FeedbackError, Invalid, NotFound
from llmops.feedback.project_schemas import (
    AnswerIn,
    AnswerOut,
    AnswerResult,
    AnswersOut,
    CorrectionIn,
    ItemAnswerIn,
    ItemAnswerResult,
)
from llmops.feedback.projects import get_project, project_item
from llmops.feedback.schemas import BulkError, ComparisonIn
from llmops.feedback.store import add_comparison, add_rating, integrity_error
from llmops.feedback.tables import Comparison, Correction, Rating, Response, utcnow


def add_correction(session: Session, body: CorrectionIn, rater_id: int) -> int:
    """Store a rater's corrected version of one response (one per response and rater)."""
    item_id = session.scalar(select(Response.item_id).where(Response.id == body.response_id))
    if item_id is None:
        raise NotFound(f"response {body.response_id} does not exist", field="response_id")
    row = Correction(item_id=item_id, response_id=body.response_id, rater_id=rater_id, text=body.text,
                     meta=body.metadata, created_at=utcnow())
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError as exc:
        if "response_id" in str(exc.orig) and "rater_id" in str(exc.orig):
            raise Conflict("this rater already corrected this response", field="response_id",
                           code="duplicate_correction") from exc
        raise integrity_error(exc) from exc
    return row.id


def missing(session: Session, questions: list[dict[str, Any]], item_id: int, rater_id: int) -> list[str]:
    """Names of the required questions this rater has not answered for the item yet (from stored rows)."""
    n_responses = session.scalar(select(func.count()).where(Response.item_id == item_id)) or 0
    ratings = session.execute(
        select(Rating.critique).where(Rating.item_id == item_id, Rating.rater_id == rater_id)
    ).scalars().all()
    comparison = session.execute(  # columns, not the ORM object (which would also load its entries)
        select(Comparison.id, Comparison.critique)
        .where(Comparison.item_id == item_id, Comparison.rater_id == rater_id).limit(1)
    ).first()
    n_corrections = session.scalar(
        select(func.count()).where(and_(Correction.item_id == item_id, Correction.rater_id == rater_id))
    ) or 0
    out = []
    for q in questions:
        if not q.get("required", True):
            continue
        kind = q["type"]
        answered = {
            "rating": len(ratings) >= n_responses,
            "preference": comparison is not None,
            "correction": n_corrections > 0,
        }.get(kind)
        if kind == "critique":
            if q.get("target", "response") == "comparison":
                answered = comparison is not None and bool((comparison.critique or "").strip())
            else:
                answered = len(ratings) >= n_responses and all((c or "").strip() for c in ratings)
        if not answered:
            out.append(q["name"])
    return out


def _apply(session: Session, kind: str, index: int, write) -> AnswerResult:
    try:
        with session.begin_nested():
            return AnswerResult(kind=kind, index=index, status=201, id=write())
    except FeedbackError as exc:
        err = exc
    except IntegrityError as exc:
        err = integrity_error(exc)
    return AnswerResult(kind=kind, index=index, status=err.status,
                        error=BulkError(code=err.code, message=err.message, field=err.field))


def _check_response(item_id: int, response_ids: set[int], response_id: int) -> None:
    if response_id not in response_ids:
        raise NotFound(f"response {response_id} is not a response of item {item_id}", field="response_id")


def submit_answer(session: Session, project_name: str, item_id: int, body: AnswerIn, rater_id: int) -> AnswerOut:
    """Store the parts of one rater's answer; the item is done for the rater when nothing required is missing.

    The rater must hold (or be able to take) one of the item's k slots *before* anything is stored:
    an answer beyond k is refused whole (409 ``item_full``).
    """
    project = get_project(session, project_name)
    project_item(session, project, item_id)
    now = utcnow()
    row = assignment.hold_slot(session, project, item_id, rater_id, now)
    responses = set(session.scalars(select(Response.id).where(Response.item_id == item_id)))
    results: list[AnswerResult] = []

    def rating(r):
        _check_response(item_id, responses, r.response_id)
        return add_rating(session, r, rater_id)

    def correction(c):
        _check_response(item_id, responses, c.response_id)
        return add_correction(session, c, rater_id)

    for i, r in enumerate(body.ratings):
        results.append(_apply(session, "rating", i, lambda r=r: rating(r)))
    if body.comparison is not None:
        cmp = ComparisonIn(item_id=item_id, **body.comparison.model_dump(exclude_none=True))
        pref = next((q for q in project.questions if q["type"] == "preference"), None)

        def comparison():
            if pref is not None and not pref.get("allow_tie", True) and cmp.kind() == "tie":
                raise Invalid(f"question {pref['name']!r} does not allow ties", field="tie", code="tie_not_allowed")
            return add_comparison(session, cmp, rater_id)

        results.append(_apply(session, "comparison", 0, comparison))
    for i, c in enumerate(body.corrections):
        results.append(_apply(session, "correction", i, lambda c=c: correction(c)))
    left = missing(session, project.questions, item_id, rater_id)
    if not left:
        if row.state != "done":
            assignment.finish(session, row, now)
    else:
        assignment.touch(session, row, project, now)
    n_failed = sum(1 for r in results if r.error is not None)
    return AnswerOut(item_id=item_id, complete=not left, missing=left, results=results,
                     n_ok=len(results) - n_failed, n_failed=n_failed)


def submit_answers(session: Session, project_name: str, bodies: list[ItemAnswerIn], rater_id: int) -> AnswersOut:
    """Several items' answers in one transaction, each in its own savepoint: one refused item fails alone.

    Each element is exactly `submit_answer` (slot check first, parts stored one by one, completion
    read back), so a batch stores what the same answers sent one by one would store.
    """
    get_project(session, project_name)  # an unknown project is a 404 for the whole request
    results: list[ItemAnswerResult] = []
    for i, body in enumerate(bodies):
        try:
            with session.begin_nested():
                out = submit_answer(session, project_name, body.item_id, body, rater_id)
            results.append(ItemAnswerResult(index=i, item_id=body.item_id, status=200, answer=out))
            continue
        except FeedbackError as exc:
            err = exc
        except IntegrityError as exc:
            err = integrity_error(exc)
        results.append(ItemAnswerResult(index=i, item_id=body.item_id, status=err.status,
                                        error=BulkError(code=err.code, message=err.message, field=err.field)))
    n_ok = sum(1 for r in results if r.status == 200)
    return AnswersOut(results=results, n_ok=n_ok, n_failed=len(results) - n_ok)

"""Projects: create/update/read them, put items into them, route new items by rules, mark gold items.

Routing decides where a *new* item goes, once, when it is created (`route_for`): an
explicit ``project`` in the request wins; otherwise the projects with routing rules are
tried by priority (higher first, then older first) and the first whose rules all hold
takes it; otherwise the default project, if one is configured; otherwise none — the
item is stored but enters no rater queue, so served traffic never floods raters by
default. Sampling is by a hash of the item's content and the project name, so the same
traffic is sampled the same way on every run and on every replica.

Functions take an open `Session` and never commit (see `llmops.feedback.store`).
"""

from __future__ import annotations

import fnmatch
import hashlib
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from llmops.feedback.errors import Conflict, FeedbackError, Invalid, NotFound
from llmops.feedback.project_schemas import (
    GoldIn,
    ProjectIn,
    ProjectOut,
    ProjectUpdate,
    RoutingRules,
)
from llmops.feedback.schemas import ItemIn
from llmops.feedback.tables import Item, Project, ProjectItem, Response, utcnow


def project_out(p: Project) -> ProjectOut:
    return ProjectOut(
        id=p.id,
        name=p.name,
        guidelines=p.guidelines,
        questions=p.questions,
        overlap_k=p.overlap_k,
        show_model_metadata=p.show_model_metadata,
        claim_timeout_s=p.claim_timeout_s,
        routing=p.routing,
        priority=p.priority,
        is_default=p.is_default,
        created_at=p.created_at.isoformat(),
        updated_at=p.updated_at.isoformat(),
    )


def rating_question(p: Project) -> dict[str, Any] | None:
    return next((q for q in p.questions if q["type"] == "rating"), None)


def _project_error(exc: IntegrityError, name: str) -> FeedbackError:
    text = str(exc.orig)
    if "one_default" in text or "is_default" in text:
        return Conflict("another project is already the default project", field="is_default", code="default_exists")
    if "slot_within_overlap" in text or "overlap" in text:
        return Conflict("items already have more raters than the new overlap_k", field="overlap_k", code="overlap_in_use")
    return Conflict(f"a project named {name!r} already exists", field="name", code="duplicate_project")


def create_project(session: Session, body: ProjectIn) -> ProjectOut:
    data = body.model_dump(mode="json")
    now = utcnow()
    row = Project(**data, created_at=now, updated_at=now)
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError as exc:
        raise _project_error(exc, body.name) from exc
    return project_out(row)


def get_project(session: Session, name: str, *, lock: bool = False) -> Project:
    stmt = select(Project).where(Project.name == name)
    project = session.scalar(stmt.with_for_update() if lock else stmt)
    if project is None:
        raise NotFound(f"project {name!r} does not exist", field="project", code="not_found")
    return project


def list_projects(session: Session) -> list[ProjectOut]:
    return [project_out(p) for p in session.scalars(select(Project).order_by(Project.id))]


def update_project(session: Session, name: str, body: ProjectUpdate) -> ProjectOut:
    """Change the given settings. Lowering ``overlap_k`` below slots in use is refused by the database."""
    project = get_project(session, name, lock=True)
    # Top-level fields given, dumped whole (exclude_unset would also drop nested defaults, e.g. a question's scale).
    data = {k: v for k, v in body.model_dump(mode="json").items() if k in body.model_fields_set}
    for field in ("guidelines", "questions", "overlap_k", "show_model_metadata", "claim_timeout_s", "priority",
                  "is_default"):
        if field in data and data[field] is None:
            raise Invalid(f"{field} cannot be null", field=field)
    if "questions" in data:
        new = next((q for q in data["questions"] if q["type"] == "rating"), None)
        if _scale(project) != (None if new is None else (new["scale_min"], new["scale_max"])) and session.scalar(
            select(ProjectItem.item_id).where(ProjectItem.project_id == project.id).limit(1)
        ) is not None:
            raise Conflict("the rating scale cannot change once the project has items", field="questions",
                           code="scale_in_use")
    for field, value in data.items():
        setattr(project, field, value)
    project.updated_at = utcnow()
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError as exc:
        raise _project_error(exc, name) from exc
    session.refresh(project)
    return project_out(project)


# ---------------------------------------------------------------- routing


@dataclass(frozen=True)
class Route:
    project_id: int
    routed_by: str  # "explicit", "rule", "default"
    scale: tuple[int, int] | None  # the project's rating scale, if it has a rating question


def _scale(p: Project) -> tuple[int, int] | None:
    q = rating_question(p)
    return None if q is None else (q["scale_min"], q["scale_max"])


def sampled(project_name: str, item: ItemIn, rate: float) -> bool:
    """Deterministic sampling: the item's content hash (with the project name) falls below `rate`."""
    if rate >= 1.0:
        return True
    h = hashlib.sha256(project_name.encode())
    for part in (item.prompt, item.context or "", *(r.text for r in item.responses)):
        h.update(b"\x00" + part.encode())
    return int.from_bytes(h.digest()[:8], "big") / 2**64 < rate


def matches(rules: RoutingRules, project_name: str, item: ItemIn) -> bool:
    if rules.models and not any(
        r.model and fnmatch.fnmatchcase(r.model, pattern) for r in item.responses for pattern in rules.models
    ):
        return False
    if rules.tags:
        tags = (item.metadata or {}).get("tags")
        tags = [tags] if isinstance(tags, str) else tags if isinstance(tags, list) else []
        if not set(rules.tags) & {t for t in tags if isinstance(t, str)}:
            return False
    return sampled(project_name, item, rules.sample_rate)


def scale_given(item: ItemIn) -> bool:
    """Whether the request named a scale (else the item takes its project's rating scale)."""
    return bool({"scale_min", "scale_max"} & item.model_fields_set)


def item_scale(item: ItemIn, route: Route | None) -> tuple[int, int]:
    """The scale a new item is stored with: its own when given, else its project's rating scale, else the default."""
    if route is not None and route.scale is not None and not scale_given(item):
        return route.scale
    return item.scale_min, item.scale_max


def route_for(session: Session, item: ItemIn) -> Route | None:
    """The project a new item goes to (see the module docstring), or None."""
    own = (item.scale_min, item.scale_max)
    given = scale_given(item)
    if item.project is not None:
        project = get_project(session, item.project)
        scale = _scale(project)
        if scale is not None and given and scale != own:
            raise Invalid(f"the item's scale {own} differs from project {project.name!r}'s rating scale {scale}",
                          field="scale_min", code="scale_mismatch")
        return Route(project.id, "explicit", scale)
    candidates = [p for p in session.scalars(select(Project).order_by(Project.priority.desc(), Project.id))
                  if p.routing or p.is_default]
    # A project's ratings need the item on its scale: an item without an explicit scale takes the project's.
    fits = lambda p: not given or _scale(p) in (None, own)  # noqa: E731
    for p in candidates:
        if p.routing and fits(p) and matches(RoutingRules.model_validate(p.routing), p.name, item):
            return Route(p.id, "rule", _scale(p))
    for p in candidates:
        if p.is_default and fits(p):
            return Route(p.id, "default", _scale(p))
    return None


def place_item(session: Session, item_id: int, route: Route) -> None:
    session.add(ProjectItem(item_id=item_id, project_id=route.project_id, routed_by=route.routed_by, added_at=utcnow()))
    session.flush()


def add_items(session: Session, name: str, item_ids: list[int]) -> list[int | FeedbackError]:
    """Put existing items into the project; each element fails alone (missing, in another project, wrong scale)."""
    project = get_project(session, name)
    scale = _scale(project)
    results: list[int | FeedbackError] = []
    for item_id in item_ids:
        item = session.get(Item, item_id)
        if item is None:
            results.append(NotFound(f"item {item_id} does not exist", field="item_ids"))
            continue
        current = session.get(ProjectItem, item_id)
        if current is not None:
            if current.project_id == project.id:
                results.append(item_id)  # already there: adding twice is a no-op
            else:
                results.append(Conflict(f"item {item_id} is already in another project", field="item_ids",
                                        code="in_other_project"))
            continue
        if scale is not None and (item.scale_min, item.scale_max) != scale:
            results.append(Invalid(f"item {item_id}'s scale {item.scale_min}..{item.scale_max} differs from the "
                                   f"project's rating scale {scale[0]}..{scale[1]}", field="item_ids",
                                   code="scale_mismatch"))
            continue
        place_item(session, item_id, Route(project.id, "admin", scale))
        results.append(item_id)
    return results


def project_item(session: Session, project: Project, item_id: int) -> ProjectItem:
    row = session.get(ProjectItem, item_id)
    if row is None or row.project_id != project.id:
        raise NotFound(f"item {item_id} is not in project {project.name!r}", field="item_id")
    return row


def set_gold(session: Session, name: str, item_id: int, gold: GoldIn | None) -> dict[str, Any] | None:
    """Mark (or with None, unmark) an item as gold: its known answers, checked against its responses."""
    project = get_project(session, name)
    row = project_item(session, project, item_id)
    if gold is not None:
        response_ids = set(session.scalars(select(Response.id).where(Response.item_id == item_id)))
        named = set(gold.ratings or {}) | set(gold.preference.response_ids() if gold.preference else [])
        if named - response_ids:
            raise NotFound(f"responses {sorted(named - response_ids)} are not responses of item {item_id}",
                           field="response_id")
        q = rating_question(project)
        lo, hi = (q["scale_min"], q["scale_max"]) if q else (None, None)
        if q and any(not lo <= s <= hi for s in (gold.ratings or {}).values()):
            raise Invalid(f"gold scores must lie on the project's scale {lo}..{hi}", field="ratings",
                          code="out_of_scale")
    row.gold = None if gold is None else gold.model_dump(mode="json", exclude_none=True)
    session.flush()
    return row.gold


"""Read the feedback an export needs, under its filters, in the caller's (pinned) transaction.

Everything is loaded once into plain tuples so every format is computed from the same
read: the same snapshot of the database gives the same rows.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from llmops.feedback.errors import NotFound
from llmops.feedback.exports.filters import ExportFilters
from llmops.feedback.tables import (
    Comparison,
    ComparisonEntry,
    Correction,
    Item,
    Project,
    ProjectItem,
    Rater,
    Rating,
    Response,
)


@dataclass(frozen=True)
class RatingRow:
    item_id: int
    response_id: int
    rater_id: int
    score: int
    scale_min: int
    scale_max: int

    @property
    def unit(self) -> float:
        """The score on [0, 1]: 0 = the scale's minimum, 1 = its maximum."""
        return (self.score - self.scale_min) / (self.scale_max - self.scale_min)


@dataclass(frozen=True)
class CorrectionRow:
    """A rater's corrected version of a response (the SFT target)."""

    item_id: int
    response_id: int | None
    rater_id: int
    text: str
    correction_id: int
    simulated: bool = False  # written by a simulated rater (the quickstart), from the correction's metadata


@dataclass
class Feedback:
    """The filtered feedback: judgements plus the items and responses they refer to."""

    ratings: list[RatingRow] = field(default_factory=list)
    # item → [(comparison id, rater id, response id, rank)]
    comparisons: dict[int, list[tuple[int, int, int, int]]] = field(default_factory=lambda: defaultdict(list))
    corrections: list[CorrectionRow] = field(default_factory=list)
    items: dict[int, Item] = field(default_factory=dict)
    texts: dict[int, str] = field(default_factory=dict)
    n_comparisons: int = 0
    high_water: dict[str, int | None] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        return {"n_items": len(self.items), "n_ratings": len(self.ratings), "n_comparisons": self.n_comparisons,
                "n_corrections": len(self.corrections)}


def _rater_ids(session: Session, names: tuple[str, ...]) -> list[int]:
    found = dict(session.execute(select(Rater.name, Rater.id).where(Rater.name.in_(names))).all())
    missing = [n for n in names if n not in found]
    if missing:
        raise NotFound(f"no rater named {', '.join(map(repr, missing))}", field="raters")
    return sorted(found.values())


def _in_range(column, filters: ExportFilters) -> list:
    conds = []
    if filters.since is not None:
        conds.append(column >= filters.since)
    if filters.until is not None:
        conds.append(column < filters.until)
    return conds


def _response_conds(filters: ExportFilters) -> list:
    conds = []
    if filters.model is not None:
        conds.append(Response.model_ref == filters.model)
    if filters.model_version is not None:
        conds.append(Response.model_version == filters.model_version)
    return conds


def project_item_ids(session: Session, project: str) -> Any:
    """A subquery of the item ids of `project` (by name, or by id when all digits)."""
    by = Project.id == int(project) if project.isdigit() else Project.name == project
    pid = session.scalar(select(Project.id).where(by))
    if pid is None:
        raise NotFound(f"no project {project!r}", field="project")
    return select(ProjectItem.item_id).where(ProjectItem.project_id == pid).scalar_subquery()


@dataclass(frozen=True)
class _Scope:
    """The store-level filters, resolved once and applied alike to every kind of judgement."""

    filters: ExportFilters
    raters: list[int] | None
    items_of_project: Any
    response_conds: list

    def apply(self, q, *, response_id, created_at, rater_id, item_id):
        """`q` restricted to the model (via `response_id`), the time range, the raters and the project."""
        if self.response_conds:
            q = q.join(Response, Response.id == response_id).where(*self.response_conds)
        q = q.where(*_in_range(created_at, self.filters))
        if self.raters is not None:
            q = q.where(rater_id.in_(self.raters))
        if self.items_of_project is not None:
            q = q.where(item_id.in_(self.items_of_project))
        return q


def _corrections(session: Session, scope: _Scope) -> list[CorrectionRow]:
    q = select(Correction.item_id, Correction.response_id, Correction.rater_id, Correction.text,
               Correction.id, Correction.meta).order_by(Correction.id)
    # With model filters: the model whose answer was corrected.
    q = scope.apply(q, response_id=Correction.response_id, created_at=Correction.created_at,
                    rater_id=Correction.rater_id, item_id=Correction.item_id)
    return [CorrectionRow(*r[:5], simulated=bool((r[5] or {}).get("simulated"))) for r in session.execute(q).all()]


def load(session: Session, filters: ExportFilters, *, corrections: bool = False) -> Feedback:
    """Load ratings and comparisons (and corrections when asked) that pass the store-level filters."""
    fb = Feedback()
    scope = _Scope(
        filters,
        _rater_ids(session, filters.raters) if filters.raters else None,
        project_item_ids(session, filters.project) if filters.project else None,
        _response_conds(filters),
    )

    q = (select(Rating.id, Rating.item_id, Rating.response_id, Rating.rater_id, Rating.score, Rating.scale_min,
                Rating.scale_max).order_by(Rating.id))
    q = scope.apply(q, response_id=Rating.response_id, created_at=Rating.created_at, rater_id=Rating.rater_id,
                    item_id=Rating.item_id)
    rows = session.execute(q).all()
    fb.ratings = [RatingRow(*r[1:]) for r in rows]
    fb.high_water["max_rating_id"] = max((r[0] for r in rows), default=None)

    cq = (select(ComparisonEntry.item_id, Comparison.id, Comparison.rater_id, ComparisonEntry.response_id,
                 ComparisonEntry.rank)
          .join(Comparison, Comparison.id == ComparisonEntry.comparison_id)
          .order_by(Comparison.id, ComparisonEntry.response_id))
    # With model filters a comparison counts only between responses of the model: others are left out.
    cq = scope.apply(cq, response_id=ComparisonEntry.response_id, created_at=Comparison.created_at,
                     rater_id=Comparison.rater_id, item_id=Comparison.item_id)
    cids = set()
    for item_id, cid, rater, rid, rank in session.execute(cq):
        fb.comparisons[item_id].append((cid, rater, rid, rank))
        cids.add(cid)
    fb.n_comparisons = len(cids)
    fb.high_water["max_comparison_id"] = max(cids, default=None)

    if corrections:
        fb.corrections = _corrections(session, scope)
        fb.high_water["max_correction_id"] = max((c.correction_id for c in fb.corrections), default=None)

    item_ids = sorted({r.item_id for r in fb.ratings} | set(fb.comparisons) | {c.item_id for c in fb.corrections})
    if item_ids:
        fb.items = {i.id: i for i in session.scalars(select(Item).where(Item.id.in_(item_ids)))}
        fb.texts = dict(session.execute(select(Response.id, Response.text).where(Response.item_id.in_(item_ids))).all())
    return fb

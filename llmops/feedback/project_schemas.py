"""Request and response bodies of projects, assignment, answers and corrections (limits are named constants).

A project's questions are a typed list; the data model keeps each kind where it is
stored: a rating question → ``feedback_ratings`` (its critique column is the per-response
critique), a preference → ``feedback_comparisons`` (with the comparison's own critique),
a correction → ``feedback_corrections``. So a project has at most one question of each
kind (and one critique per target), which `ProjectIn` checks.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, Field, model_validator

from llmops.feedback.schemas import (
    MAX_BULK_ITEMS,
    MAX_REF_CHARS,
    MAX_RESPONSE_CHARS,
    MAX_RESPONSES_PER_ITEM,
    PROJECT_NAME_PATTERN,
    BulkError,
    Id,
    ItemOut,
    PreferenceIn,
    RatingIn,
    Score,
    Strict,
)

MAX_GUIDELINES_CHARS = 50_000  # Markdown shown above every item
MAX_QUESTIONS = 8
MAX_QUESTION_TEXT_CHARS = 1_000
MAX_LABEL_CHARS = 200
MAX_OVERLAP = 50
MAX_CLAIM_TIMEOUT_S = 7 * 24 * 3600
DEFAULT_CLAIM_TIMEOUT_S = 900
MAX_ROUTING_PATTERNS = 50
MAX_TAG_CHARS = 100
MAX_CORRECTION_CHARS = MAX_RESPONSE_CHARS
MAX_CLAIM_COUNT = 50  # items one `POST /v1/projects/{p}/next?count=N` may hold for a rater
MAX_ANSWERS_PER_REQUEST = 50  # items answered by one `POST /v1/projects/{p}/answers`

ProjectName = Annotated[str, Field(pattern=PROJECT_NAME_PATTERN, description="Unique; letters, digits, . _ -")]
QuestionName = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")]


class _Question(Strict):
    name: QuestionName
    required: bool = True
    text: str | None = Field(None, max_length=MAX_QUESTION_TEXT_CHARS, description="The question as raters read it.")


class RatingQuestion(_Question):
    """A score per response on ``scale_min..scale_max``; ``labels`` name some or all points."""

    type: Literal["rating"]
    scale_min: Score = 1
    scale_max: Score = 5
    labels: dict[int, Annotated[str, Field(min_length=1, max_length=MAX_LABEL_CHARS)]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _scale(self) -> RatingQuestion:
        if self.scale_min >= self.scale_max:
            raise ValueError("scale_min must be lower than scale_max")
        off = [k for k in self.labels if not self.scale_min <= k <= self.scale_max]
        if off:
            raise ValueError(f"labels {off} are outside the scale {self.scale_min}..{self.scale_max}")
        return self


class PreferenceQuestion(_Question):
    """A comparison between the item's responses (pair, ranking, or tie when ``allow_tie``)."""

    type: Literal["preference"]
    allow_tie: bool = True


class CritiqueQuestion(_Question):
    """Free text: one per response (``target="response"``) or one on the comparison."""

    type: Literal["critique"]
    target: Literal["response", "comparison"] = "response"


class CorrectionQuestion(_Question):
    """A corrected (better) version of a response, written by the rater: SFT data."""

    type: Literal["correction"]


Question = Annotated[
    Union[RatingQuestion, PreferenceQuestion, CritiqueQuestion, CorrectionQuestion], Field(discriminator="type")
]


class RoutingRules(Strict):
    """Which newly created items enter the project. Every given condition must hold.

    ``models``: glob patterns (``fnmatch``) on any response's model reference, e.g.
    ``"registry:chat@prod"``, ``"*@prod"`` (an alias) or ``"tiny*"``; ``tags``: any of them
    in the item's ``metadata["tags"]``; ``sample_rate``: the share of matching items taken,
    decided by a hash of the item's content and the project name, so the same traffic is
    sampled the same way on every run.
    """

    models: list[Annotated[str, Field(min_length=1, max_length=MAX_REF_CHARS)]] = Field(
        default_factory=list, max_length=MAX_ROUTING_PATTERNS
    )
    tags: list[Annotated[str, Field(min_length=1, max_length=MAX_TAG_CHARS)]] = Field(
        default_factory=list, max_length=MAX_ROUTING_PATTERNS
    )
    sample_rate: float = Field(1.0, ge=0.0, le=1.0)


class _ProjectSettings(Strict):
    guidelines: str | None = Field(None, max_length=MAX_GUIDELINES_CHARS, description="Markdown for raters.")
    questions: list[Question] | None = Field(None, min_length=1, max_length=MAX_QUESTIONS)
    overlap_k: int | None = Field(None, ge=1, le=MAX_OVERLAP, description="Distinct raters per item.")
    show_model_metadata: bool | None = Field(None, description="Raters see model names/versions and item metadata.")
    claim_timeout_s: int | None = Field(None, ge=1, le=MAX_CLAIM_TIMEOUT_S, description="An unanswered claim returns after this.")
    routing: RoutingRules | None = Field(None, description="Rules routing new items here; null: explicit items only.")
    priority: int | None = Field(None, ge=-1000, le=1000, description="Routing order: higher first.")
    is_default: bool | None = Field(None, description="Takes items no rule matched (at most one project).")

    @model_validator(mode="after")
    def _questions(self) -> _ProjectSettings:
        if self.questions is not None:
            check_questions(self.questions)
        return self


def check_questions(questions: list[Any]) -> None:
    names = [q.name for q in questions]
    if len(set(names)) != len(names):
        raise ValueError("question names must be unique")
    kinds = [q.type if q.type != "critique" else f"critique:{q.target}" for q in questions]
    twice = sorted({k for k in kinds if kinds.count(k) > 1})
    if twice:
        raise ValueError(f"at most one question of each kind (and one critique per target); repeated: {twice}")
    if "critique:comparison" in kinds and "preference" not in kinds:
        raise ValueError("a critique of the comparison needs a preference question")


class ProjectIn(_ProjectSettings):
    name: ProjectName
    guidelines: str = Field("", max_length=MAX_GUIDELINES_CHARS, description="Markdown for raters.")
    questions: list[Question] = Field(min_length=1, max_length=MAX_QUESTIONS)
    overlap_k: int = Field(1, ge=1, le=MAX_OVERLAP, description="Distinct raters per item.")
    show_model_metadata: bool = False
    claim_timeout_s: int = Field(DEFAULT_CLAIM_TIMEOUT_S, ge=1, le=MAX_CLAIM_TIMEOUT_S)
    priority: int = Field(0, ge=-1000, le=1000)
    is_default: bool = False


class ProjectUpdate(_ProjectSettings):
    """Only the fields given change; ``routing`` set to null removes the rules."""


class ProjectOut(BaseModel):
    id: int
    name: str
    guidelines: str
    questions: list[Question]
    overlap_k: int
    show_model_metadata: bool
    claim_timeout_s: int
    routing: RoutingRules | None
    priority: int
    is_default: bool
    created_at: str
    updated_at: str


class ProjectItemsIn(Strict):
    item_ids: list[Id] = Field(min_length=1, max_length=MAX_BULK_ITEMS)


class GoldIn(Strict):
    """An item's known answers: scores per response id and/or the right preference."""

    ratings: dict[Id, Score] | None = Field(None, max_length=MAX_RESPONSES_PER_ITEM)
    preference: PreferenceIn | None = None

    @model_validator(mode="after")
    def _some(self) -> GoldIn:
        if not self.ratings and self.preference is None:
            raise ValueError("give ratings and/or a preference")
        return self


class CorrectionIn(Strict):
    response_id: Id
    text: str = Field(min_length=1, max_length=MAX_CORRECTION_CHARS, description="The corrected response.")
    metadata: dict[str, Any] | None = Field(None, description='e.g. {"simulated": true}')


class AnswerIn(Strict):
    """One rater's answer to one project item: the parts the project's questions ask for."""

    ratings: list[RatingIn] = Field(default_factory=list, max_length=MAX_RESPONSES_PER_ITEM)
    comparison: PreferenceIn | None = None
    corrections: list[CorrectionIn] = Field(default_factory=list, max_length=MAX_RESPONSES_PER_ITEM)


class ItemAnswerIn(AnswerIn):
    """An answer to one item of a batch (`POST /v1/projects/{p}/answers`)."""

    item_id: Id


class AnswersIn(Strict):
    """Answers to several items of one project, each stored (or refused) on its own."""

    answers: list[ItemAnswerIn] = Field(min_length=1, max_length=MAX_ANSWERS_PER_REQUEST)

    @model_validator(mode="after")
    def _distinct(self) -> AnswersIn:
        seen: set[int] = set()
        for a in self.answers:
            if a.item_id in seen:
                raise ValueError(f"item {a.item_id} is answered twice in one request")
            seen.add(a.item_id)
        return self


class AnswerResult(BaseModel):
    kind: Literal["rating", "comparison", "correction"]
    index: int
    status: int
    id: int | None = None
    error: BulkError | None = None


class AnswerOut(BaseModel):
    item_id: int
    complete: bool = Field(description="All required questions answered: the item left this rater's queue.")
    missing: list[str] = Field(description="Names of required questions still unanswered.")
    results: list[AnswerResult]
    n_ok: int
    n_failed: int


class ItemAnswerResult(BaseModel):
    index: int
    item_id: int
    status: int = Field(description="200: the answer was taken (its parts have their own results); else the error")
    answer: AnswerOut | None = None
    error: BulkError | None = None


class AnswersOut(BaseModel):
    results: list[ItemAnswerResult]
    n_ok: int = Field(description="Items whose answer was taken (status 200).")
    n_failed: int = Field(description="Items refused whole (not in the project, item_full, ...).")


class NextOut(BaseModel):
    project: str
    item: ItemOut | None = Field(description="null: nothing left for this rater (with count=N: the first of `items`)")
    expires_at: str | None = Field(None, description="The claims return to the queue after this unless answered.")
    items: list[ItemOut] = Field(default_factory=list, description="Every item this call holds for the caller "
                                 "(at most `count`): open claims first, then new ones, oldest first.")


class RaterProgress(BaseModel):
    rater: str
    answered: int
    skipped: int
    claimed: int


class ProgressOut(BaseModel):
    project: str
    overlap_k: int
    n_items: int
    n_complete: int = Field(description="Items with k answers.")
    n_answers: int
    n_skips: int
    n_claimed: int = Field(description="Unexpired, unanswered claims.")
    raters: list[RaterProgress] = Field(description="Raters see only their own row.")


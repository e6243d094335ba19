"""Request and response bodies of the feedback API, with every limit a named constant.

Limits bound what one request can cost (memory, transaction size, row width); the
body-size limit is enforced before parsing by `llmops.feedback.api.limits`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

MAX_BODY_BYTES = 1 << 20  # 1 MiB, any request
MAX_BULK_BODY_BYTES = 8 << 20  # 8 MiB, bulk endpoints
MAX_PROMPT_CHARS = 100_000
MAX_CONTEXT_CHARS = 200_000
MAX_RESPONSE_CHARS = 100_000
MAX_CRITIQUE_CHARS = 10_000
MAX_RESPONSES_PER_ITEM = 16
MAX_BULK_ITEMS = 200
MAX_BULK_RATINGS = 1_000
MAX_PAGE_LIMIT = 200
DEFAULT_PAGE_LIMIT = 50
MAX_REF_CHARS = 500
MAX_VERSION_CHARS = 200
MAX_NAME_CHARS = 200
MAX_IDEMPOTENCY_KEY_CHARS = 255
SCALE_BOUND = 1_000  # |scale_min|, |scale_max| and |score| never exceed it
PROJECT_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$"
ID_MAX = 2**63 - 1  # the largest id PostgreSQL can hold; larger ones are 422, not a driver error

Id = Annotated[int, Field(ge=1, le=ID_MAX)]
Score = Annotated[int, Field(ge=-SCALE_BOUND, le=SCALE_BOUND)]


def _storable(value: Any) -> Any:
    """Reject text no database can store (PostgreSQL refuses NUL; unpaired UTF-16 surrogates,
    which JSON can spell as \\udXXX, are not encodable as UTF-8) — 422 here, not 5xx later."""
    if isinstance(value, str):
        if "\x00" in value:
            raise ValueError("text must not contain NUL (\\u0000) characters")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise ValueError("text must be valid Unicode (unpaired surrogate)") from exc
    elif isinstance(value, dict):
        for k, v in value.items():
            _storable(k)
            _storable(v)
    elif isinstance(value, list):
        for v in value:
            _storable(v)
    return value


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    @field_validator("*", mode="after")
    @classmethod
    def _storable_text(cls, value: Any) -> Any:
        return value if isinstance(value, BaseModel) else _storable(value)


class ResponseIn(Strict):
    text: str = Field(max_length=MAX_RESPONSE_CHARS, description="The model output shown to raters.")
    model: str | None = Field(None, max_length=MAX_REF_CHARS, description="Model reference that produced it.")
    model_version: str | None = Field(None, max_length=MAX_VERSION_CHARS, description="Registry version, commit or hash.")
    generation_params: dict[str, Any] | None = Field(None, description="Sampling parameters (temperature, top_p, seed...).")


class ItemIn(Strict):
    prompt: str = Field(min_length=1, max_length=MAX_PROMPT_CHARS)
    context: str | None = Field(None, max_length=MAX_CONTEXT_CHARS)
    metadata: dict[str, Any] | None = None
    scale_min: Score = Field(1, description="Lowest score of this item's rating scale.")
    scale_max: Score = Field(5, description="Highest score of this item's rating scale.")
    responses: list[ResponseIn] = Field(min_length=1, max_length=MAX_RESPONSES_PER_ITEM)
    project: str | None = Field(
        None, pattern=PROJECT_NAME_PATTERN, description="Put the item in this project (default: routing rules decide)."
    )

    @model_validator(mode="after")
    def _scale(self) -> ItemIn:
        if self.scale_min >= self.scale_max:
            raise ValueError("scale_min must be lower than scale_max")
        return self


class ItemCreated(BaseModel):
    item_id: int
    response_ids: list[int]


class RatingIn(Strict):
    response_id: Id
    score: Score = Field(description="On the item's scale (default 1-5).")
    critique: str | None = Field(None, max_length=MAX_CRITIQUE_CHARS)


class Created(BaseModel):
    id: int


class PreferenceIn(Strict):
    """Exactly one of: ``ranking`` (best first; two ids = pairwise), ``chosen``+``rejected``, or ``tie``;
    an optional critique of the comparison itself (why one is better)."""

    ranking: list[Id] | None = Field(None, min_length=2, max_length=MAX_RESPONSES_PER_ITEM)
    chosen: Id | None = None
    rejected: Id | None = None
    tie: list[Id] | None = Field(None, min_length=2, max_length=2)
    critique: str | None = Field(None, max_length=MAX_CRITIQUE_CHARS)

    @model_validator(mode="after")
    def _one_form(self) -> PreferenceIn:
        forms = [self.ranking is not None, self.chosen is not None or self.rejected is not None, self.tie is not None]
        if sum(forms) != 1:
            raise ValueError("give exactly one of ranking, chosen+rejected, or tie")
        if forms[1] and (self.chosen is None or self.rejected is None):
            raise ValueError("chosen and rejected go together")
        ids = self.response_ids()
        if len(set(ids)) != len(ids):
            raise ValueError("a response appears twice in the comparison")
        return self

    def kind(self) -> Literal["ranking", "pair", "tie"]:
        if self.tie is not None:
            return "tie"
        if self.ranking is not None and len(self.ranking) > 2:
            return "ranking"
        return "pair"

    def response_ids(self) -> list[int]:
        if self.ranking is not None:
            return list(self.ranking)
        if self.tie is not None:
            return list(self.tie)
        return [x for x in (self.chosen, self.rejected) if x is not None]

    def ranks(self) -> dict[int, int]:
        """Response id → rank (1 = best; a tie gives both rank 1)."""
        if self.tie is not None:
            return {rid: 1 for rid in self.tie}
        return {rid: i + 1 for i, rid in enumerate(self.response_ids())}


class ComparisonIn(PreferenceIn):
    """A preference between responses of item ``item_id`` (see `PreferenceIn` for the forms)."""

    item_id: Id


class BulkItemsIn(Strict):
    items: list[ItemIn] = Field(min_length=1, max_length=MAX_BULK_ITEMS)


class BulkRatingsIn(Strict):
    ratings: list[RatingIn] = Field(min_length=1, max_length=MAX_BULK_RATINGS)


class BulkError(BaseModel):
    code: str
    message: str
    field: str | None = None


class BulkResult(BaseModel):
    index: int
    status: int
    item_id: int | None = None
    response_ids: list[int] | None = None
    id: int | None = None
    error: BulkError | None = None


class BulkOut(BaseModel):
    results: list[BulkResult]
    n_ok: int
    n_failed: int


class ResponseOut(BaseModel):
    id: int
    position: int
    text: str
    model: str | None
    model_version: str | None
    generation_params: dict[str, Any] | None


class ItemOut(BaseModel):
    id: int
    prompt: str
    context: str | None
    metadata: dict[str, Any] | None
    scale_min: int
    scale_max: int
    created_at: str
    responses: list[ResponseOut]


class ItemPage(BaseModel):
    items: list[ItemOut]
    next_cursor: str | None = Field(description="Pass as ?cursor= for the next page; null on the last page.")


class KeyIn(Strict):
    role: Literal["admin", "service", "rater", "client"]
    name: str | None = Field(None, min_length=1, max_length=MAX_NAME_CHARS, description="Rater name (default: a fresh one).")


class KeyOut(BaseModel):
    key_id: str
    role: str
    name: str
    created_at: str
    revoked_at: str | None = None
    key: str | None = Field(None, description="The secret, shown once at creation and never again.")


class ErrorBody(BaseModel):
    code: str
    message: str
    field: str | None = None


class ErrorOut(BaseModel):
    error: ErrorBody

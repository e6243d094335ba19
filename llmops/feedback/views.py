"""What a rater may see of an item: blind, redacted, in a per-rater shuffled order.

Raters judge text, not provenance: knowing which model (or version) wrote a response, or
that it is always shown first, biases the judgement, and the end-user id and system
prompt in an item's metadata are private to the operator. So for a principal without
``items:read-all`` (raters) an item keeps only its prompt, context, scale and the
responses' ids and texts; the responses are shuffled with a seed of (rater, item) —
stable for one rater across reloads, different between raters — and ``position`` is
the display order. Services and admins see everything. A project that wants raters to
see provenance sets ``rater_view="full"`` (`FeedbackOptions`).
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from typing import Literal

from llmops.feedback.policies import Action, Principal, allowed
from llmops.feedback.schemas import ItemOut, ItemPage, ResponseOut

RaterView = Literal["blind", "full"]


@dataclass(frozen=True)
class FeedbackOptions:
    """Project-level choices of a feedback service."""

    rater_view: RaterView = "blind"


def _seed(rater_id: int, item_id: int) -> int:
    return int.from_bytes(hashlib.sha256(f"rater-order:{rater_id}:{item_id}".encode()).digest()[:8], "big")


def for_principal(item: ItemOut, principal: Principal, options: FeedbackOptions | None = None,
                  *, show_models: bool = False) -> ItemOut:
    """The item as `principal` may see it (see the module docstring).

    `show_models` (a project's ``show_model_metadata``): raters also see each response's model,
    version and generation parameters — still shuffled, and still without the item's metadata.
    """
    if allowed(principal, Action.ITEMS_READ_ALL) or (options is not None and options.rater_view == "full"):
        return item
    order = list(item.responses)
    random.Random(_seed(principal.rater_id, item.id)).shuffle(order)
    responses = [
        ResponseOut(id=r.id, position=i, text=r.text, model=r.model if show_models else None,
                    model_version=r.model_version if show_models else None,
                    generation_params=r.generation_params if show_models else None)
        for i, r in enumerate(order)
    ]
    return item.model_copy(update={"metadata": None, "responses": responses})


def page_for_principal(page: ItemPage, principal: Principal, options: FeedbackOptions | None = None) -> ItemPage:
    return ItemPage(items=[for_principal(i, principal, options) for i in page.items], next_cursor=page.next_cursor)

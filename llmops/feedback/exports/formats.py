"""Rows of each export format, and their Arrow schemas (Parquet and `datasets` folders).

=====================  =========================================================  ==============
format                 row (TRL's dataset format)                                 trainer
=====================  =========================================================  ==============
trl-preference         prompt, chosen, rejected: strings (standard preference)    DPOTrainer
trl-conversational     prompt: messages; chosen/rejected: [assistant message]     DPOTrainer
reward                 prompt, chosen, rejected: strings; margin (see pairs.py)   RewardTrainer
kto                    prompt, completion: strings; label: bool (unpaired)        KTOTrainer
sft                    messages (conversational LM) or prompt, completion         SFTTrainer
=====================  =========================================================  ==============

Every row also carries provenance columns (``item_id``, response ids, ``n_raters``,
``agreement``); TRL ignores columns it does not know.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import pyarrow as pa

from llmops.feedback.errors import Invalid
from llmops.feedback.exports.pairs import Pair, preference_pairs
from llmops.feedback.exports.source import Feedback
from llmops.feedback.tables import Item

FORMATS = ("trl-preference", "trl-conversational", "kto", "sft", "reward")
PAIR_FORMATS = ("trl-preference", "trl-conversational", "reward")
SFT_STYLES = ("messages", "prompt-completion")
ROLES = ("system", "user", "assistant")

_MESSAGES = pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))
_PAIR_TAIL = [("margin", pa.float64()), ("agreement", pa.float64()), ("n_raters", pa.int64()),
              ("item_id", pa.int64()), ("chosen_response_id", pa.int64()), ("rejected_response_id", pa.int64()),
              ("source", pa.string())]
SCHEMAS: dict[str, pa.Schema] = {
    "trl-preference": pa.schema([("prompt", pa.string()), ("chosen", pa.string()), ("rejected", pa.string()),
                                 *_PAIR_TAIL]),
    "reward": pa.schema([("prompt", pa.string()), ("chosen", pa.string()), ("rejected", pa.string()), *_PAIR_TAIL]),
    "trl-conversational": pa.schema([("prompt", _MESSAGES), ("chosen", _MESSAGES), ("rejected", _MESSAGES),
                                     *_PAIR_TAIL]),
    "kto": pa.schema([("prompt", pa.string()), ("completion", pa.string()), ("label", pa.bool_()),
                      ("rating", pa.float64()), ("agreement", pa.float64()), ("n_raters", pa.int64()),
                      ("item_id", pa.int64()), ("response_id", pa.int64())]),
}
_SFT_TAIL = [("item_id", pa.int64()), ("response_id", pa.int64()), ("correction_id", pa.int64()),
             ("simulated", pa.bool_()), ("n_raters", pa.int64()), ("agreement", pa.float64())]
SFT_SCHEMAS = {
    "messages": pa.schema([("messages", _MESSAGES), *_SFT_TAIL]),
    "prompt-completion": pa.schema([("prompt", pa.string()), ("completion", pa.string()), *_SFT_TAIL]),
}


def schema_for(fmt: str, params: dict[str, Any]) -> pa.Schema:
    return SFT_SCHEMAS[params.get("sft_style", "messages")] if fmt == "sft" else SCHEMAS[fmt]


def prompt_text(item: Item) -> str:
    return f"{item.context}\n\n{item.prompt}" if item.context else item.prompt


def prompt_messages(item: Item) -> list[dict[str, str]]:
    """The conversation the model answered: the served chat (``metadata.messages``, system prompts included)
    when recorded, else one user turn with the context and prompt."""
    recorded = (item.meta or {}).get("messages")
    if (isinstance(recorded, list) and recorded
            and all(isinstance(m, dict) and m.get("role") in ROLES and isinstance(m.get("content"), str)
                    for m in recorded)
            and recorded[-1]["role"] == "user"):
        return [{"role": m["role"], "content": m["content"]} for m in recorded]
    return [{"role": "user", "content": prompt_text(item)}]


def _assistant(text: str) -> list[dict[str, str]]:
    return [{"role": "assistant", "content": text}]


def _pair_row(fmt: str, fb: Feedback, p: Pair) -> dict[str, Any]:
    item = fb.items[p.item_id]
    chosen = p.chosen_text if p.chosen_text is not None else fb.texts[p.chosen]  # a correction, or a response
    if fmt == "trl-conversational":
        head = {"prompt": prompt_messages(item), "chosen": _assistant(chosen),
                "rejected": _assistant(fb.texts[p.rejected])}
    else:
        head = {"prompt": prompt_text(item), "chosen": chosen, "rejected": fb.texts[p.rejected]}
    return {**head, "margin": round(p.margin, 6),
            "agreement": None if p.agreement is None else round(p.agreement, 6), "n_raters": p.n_raters,
            "item_id": p.item_id, "chosen_response_id": None if p.chosen_text is not None else p.chosen,
            "rejected_response_id": p.rejected,
            "source": p.source}


def _pair_key(row: dict[str, Any]) -> tuple[str, str, str] | None:
    """Identity of a pair for de-duplication; None for an uninformative pair (identical texts)."""
    def text(v: Any) -> str:
        return v if isinstance(v, str) else repr(v)

    if text(row["chosen"]) == text(row["rejected"]):
        return None
    return text(row["prompt"]), text(row["chosen"]), text(row["rejected"])


def kto_rows(fb: Feedback, threshold: float) -> list[dict[str, Any]]:
    """One row per rated response: desirable when its mean rating (on [0, 1]) is above `threshold`,
    undesirable when below; a mean exactly at the threshold is ambiguous and left out."""
    if not 0.0 < threshold < 1.0:
        raise Invalid("kto_threshold must be in (0, 1) (a fraction of the rating scale)", field="kto_threshold")
    units: dict[int, list[float]] = defaultdict(list)
    item_of: dict[int, int] = {}
    for r in fb.ratings:
        units[r.response_id].append(r.unit)
        item_of[r.response_id] = r.item_id
    rows = []
    for rid in sorted(units, key=lambda r: (item_of[r], r)):
        scores = units[rid]
        mean = sum(scores) / len(scores)
        if mean == threshold:
            continue
        label = mean > threshold
        agree = sum((s > threshold) == label and s != threshold for s in scores) / len(scores)
        item = fb.items[item_of[rid]]
        rows.append({"prompt": prompt_text(item), "completion": fb.texts[rid], "label": label,
                     "rating": round(mean, 6), "agreement": round(agree, 6), "n_raters": len(scores),
                     "item_id": item.id, "response_id": rid})
    return rows


def sft_rows(fb: Feedback, style: str) -> list[dict[str, Any]]:
    """One row per corrected response: the prompt and the rater's corrected text."""
    if style not in SFT_STYLES:
        raise Invalid(f"unknown sft_style {style!r}; choose one of {', '.join(SFT_STYLES)}", field="sft_style")
    rows = []
    for c in sorted(fb.corrections, key=lambda c: (c.item_id, c.correction_id)):
        item = fb.items[c.item_id]
        if not c.text.strip():
            continue
        head = ({"messages": prompt_messages(item) + _assistant(c.text)} if style == "messages"
                else {"prompt": prompt_text(item), "completion": c.text})
        rows.append({**head, "item_id": c.item_id, "response_id": c.response_id, "correction_id": c.correction_id,
                     "simulated": c.simulated, "n_raters": 1, "agreement": None})
    return rows


def dedupe(rows: list[dict[str, Any]], key) -> tuple[list[dict[str, Any]], int]:
    """Keep the first row of each key (and drop rows whose key is None)."""
    seen: set = set()
    kept = []
    for row in rows:
        k = key(row)
        if k is None or k in seen:
            continue
        seen.add(k)
        kept.append(row)
    return kept, len(rows) - len(kept)


def format_rows(fmt: str, fb: Feedback, params: dict[str, Any]) -> tuple[list[dict[str, Any]], int]:
    """(rows, number dropped as duplicates) of `fmt` from the loaded feedback."""
    if fmt in PAIR_FORMATS:
        pairs = preference_pairs(fb, params["strategy"], params["min_margin"], params["seed"])
        return dedupe([_pair_row(fmt, fb, p) for p in pairs], _pair_key)
    if fmt == "kto":
        return dedupe(kto_rows(fb, params["kto_threshold"]), lambda r: (r["prompt"], r["completion"]))
    if fmt == "sft":
        rows = sft_rows(fb, params["sft_style"])
        return dedupe(rows, lambda r: repr(r.get("messages")) if "messages" in r else (r["prompt"], r["completion"]))
    raise Invalid(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}", field="format")

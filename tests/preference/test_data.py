"""Preference tokenisation: completion masks, formats, truncation, one concatenated batch."""

from __future__ import annotations

import pytest
import torch

from llmops.errors import DataError
from llmops.preference.data import PairCollator, PairTokenizer, build_pair_examples, split_record

from .helpers import ids, word_tokenizer

PLAIN = {"prompt": "why is sky blue", "chosen": "because light scatters", "rejected": "random words"}


def test_chat_template_pair_masks_assistant_content_and_end_of_turn():
    pt = PairTokenizer(word_tokenizer(), max_length=64)
    ex, truncated = pt.pair(PLAIN)
    assert not truncated
    assert ex["prompt_ids"] == ids("<|user|>", "why", "is", "sky", "blue", "<eot>", "<|assistant|>")
    assert ex["chosen_ids"] == ids("because", "light", "scatters", "<eot>")
    assert ex["rejected_ids"] == ids("random", "words", "<eot>")


def test_plain_text_without_template_appends_eos():
    pt = PairTokenizer(word_tokenizer(chat_template=False), max_length=64)
    ex, _ = pt.pair(PLAIN)
    assert ex["prompt_ids"] == ids("why", "is", "sky", "blue")
    assert ex["chosen_ids"] == ids("because", "light", "scatters", "<eot>")


def test_conversational_and_implicit_prompt_formats_agree_with_plain():
    pt = PairTokenizer(word_tokenizer(), max_length=64)
    user = [{"role": "user", "content": PLAIN["prompt"]}]
    conv = {
        "prompt": user,
        "chosen": [{"role": "assistant", "content": PLAIN["chosen"]}],
        "rejected": [{"role": "assistant", "content": PLAIN["rejected"]}],
    }
    implicit = {"chosen": user + conv["chosen"], "rejected": user + conv["rejected"]}
    plain, _ = pt.pair(PLAIN)
    assert pt.pair(conv)[0] == plain
    assert pt.pair(implicit)[0] == plain


def test_margin_column_and_bad_rows_name_the_row():
    tok = word_tokenizer()
    examples, stats = build_pair_examples([{**PLAIN, "margin": 2}], tok, 64, margin_column="margin", source="f.jsonl")
    assert examples[0]["margin"] == 2.0 and stats.n_examples == 1
    with pytest.raises(DataError, match=r"f.jsonl: row 2: .*chosen"):
        build_pair_examples([PLAIN, {"prompt": "a", "rejected": "b"}], tok, 64, source="f.jsonl")
    with pytest.raises(DataError, match="row 1: margin column `score` missing"):
        build_pair_examples([PLAIN], tok, 64, margin_column="score", source="f.jsonl")
    with pytest.raises(DataError, match="implicit prompt"):
        split_record({"chosen": "a", "rejected": "b"})


def test_truncation_keeps_prompt_end_and_completion_start():
    pt = PairTokenizer(word_tokenizer(chat_template=False), max_length=6)
    record = {"prompt": "a b c a b c a b", "chosen": "good answer is good", "rejected": "bad"}
    ex, truncated = pt.pair(record)
    assert truncated
    assert ex["prompt_ids"] == ids("c", "a", "b")  # the prompt loses its start, down to half the budget
    assert ex["chosen_ids"] == ids("good", "answer", "is")
    assert ex["rejected_ids"] == ids("bad", "<eot>")
    assert len(ex["prompt_ids"]) + len(ex["chosen_ids"]) <= 6


@pytest.mark.parametrize("side", ["right", "left"])
def test_pair_collator_concatenates_chosen_then_rejected(side):
    tok = word_tokenizer(pad_is_eos=True)
    examples, _ = build_pair_examples([PLAIN, {**PLAIN, "chosen": "good", "rejected": "bad answer"}], tok, 64)
    examples[0]["ref_chosen_logps"], examples[0]["ref_rejected_logps"] = -1.0, -2.0
    examples[1]["ref_chosen_logps"], examples[1]["ref_rejected_logps"] = -3.0, -4.0
    batch = PairCollator(tok.pad_token_id, side)(examples)
    assert batch["input_ids"].shape[0] == 4
    for row, (ex, key) in enumerate([(e, k) for k in ("chosen_ids", "rejected_ids") for e in examples]):
        real = batch["attention_mask"][row].bool()
        assert batch["input_ids"][row][real].tolist() == ex["prompt_ids"] + ex[key]
        assert batch["input_ids"][row][batch["completion_mask"][row].bool()].tolist() == ex[key]
    torch.testing.assert_close(batch["ref_chosen_logps"], torch.tensor([-1.0, -3.0]))
    edge = 0 if side == "left" else -1
    assert batch["attention_mask"][:, edge].tolist().count(0) >= 1  # padding on the requested side

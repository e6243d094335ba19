"""SFT label masking, checked token by token on hand-written examples.

The built-in template renders a turn as `<|role|>\\n{content}<|end|>`; trained labels
must be exactly each assistant turn's content tokens plus its `<|end|>` (= eos).
"""

from __future__ import annotations

import copy

import pytest

from llmops.data import IGNORE, SFTCollator, build_sft_examples, tokenize_sft
from llmops.errors import DataError


def trained(ex, tok) -> list[str]:
    """The tokens that carry a label, as strings (masking is easiest to read this way)."""
    return [tok.convert_ids_to_tokens(label) for label in ex["labels"] if label != IGNORE]


def encode(tok, text: str) -> list[str]:
    return tok.convert_ids_to_tokens(tok(text, add_special_tokens=False)["input_ids"])


def test_single_turn_trains_content_and_end_of_turn(tokenizer):
    ex = tokenize_sft({"prompt": "Add two numbers.", "completion": "Sum them."}, tokenizer, 256)
    ids = tokenizer.convert_ids_to_tokens(ex["input_ids"])
    assert ids[0] == "<|user|>" and ids.count("<|end|>") == 2
    assert trained(ex, tokenizer) == encode(tokenizer, "Sum them.") + ["<|end|>"]
    assert tokenizer.eos_token == "<|end|>"
    # labels align with input ids where trained
    assert all(lab in (IGNORE, tid) for lab, tid in zip(ex["labels"], ex["input_ids"]))


def test_multi_turn_trains_every_assistant_turn_only(tokenizer):
    record = {
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello."},
            {"role": "user", "content": "Bye"},
            {"role": "assistant", "content": "Ciao"},
        ]
    }
    ex = tokenize_sft(record, tokenizer, 512)
    expected = encode(tokenizer, "Hello.") + ["<|end|>"] + encode(tokenizer, "Ciao") + ["<|end|>"]
    assert trained(ex, tokenizer) == expected
    # the role header and newline before each answer are not trained
    toks = tokenizer.convert_ids_to_tokens(ex["input_ids"])
    for i, t in enumerate(toks):
        if t == "<|assistant|>":
            assert ex["labels"][i] == IGNORE and ex["labels"][i + 1] == IGNORE and ex["labels"][i + 2] != IGNORE


def test_pad_equal_to_eos_still_trains_end_of_turn_and_pads_by_position(tokenizer):
    tok = copy.deepcopy(tokenizer)
    tok.pad_token = tok.eos_token
    assert tok.pad_token_id == tok.eos_token_id
    short = tokenize_sft({"prompt": "Q", "completion": "A."}, tok, 64)
    long = tokenize_sft({"prompt": "A longer question here", "completion": "A longer answer."}, tok, 64)
    assert trained(short, tok)[-1] == "<|end|>"
    batch = SFTCollator(tok.pad_token_id)([short, long])
    n = len(short["input_ids"])
    assert batch["labels"][0, n - 1].item() == tok.eos_token_id  # the real end-of-turn: trained
    assert (batch["labels"][0, n:] == IGNORE).all()  # padding with the same id: ignored
    assert (batch["input_ids"][0, n:] == tok.eos_token_id).all()
    assert batch["attention_mask"][0].tolist() == [1] * n + [0] * (batch["input_ids"].shape[1] - n)


CHATML = (
    "{% for m in messages %}{{ '<|' + m['role'] + '|>\\n' + m['content'] + '<|end|>\\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>\\n' }}{% endif %}"
)
DEFAULT_SYSTEM = (
    "{{ '<|system|>\\nYou are helpful.<|end|>' }}"
    "{% for m in messages %}{{ '<|' + m['role'] + '|>\\n' + m['content'] + '<|end|>' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>\\n' }}{% endif %}"
)


@pytest.mark.parametrize("template", [CHATML, DEFAULT_SYSTEM], ids=["trailing-newline", "default-system-prompt"])
def test_other_templates_are_masked_by_prefix_diffing(tokenizer, template):
    tok = copy.deepcopy(tokenizer)
    tok.chat_template = template
    record = {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Yo."},
                           {"role": "user", "content": "More"}, {"role": "assistant", "content": "Ok"}]}
    ex = tokenize_sft(record, tok, 512)
    # the newline a ChatML-like template emits after <|end|> is not trained
    assert trained(ex, tok) == encode(tok, "Yo.") + ["<|end|>"] + encode(tok, "Ok") + ["<|end|>"]


def test_plain_prompt_completion_without_template_appends_eos(tokenizer):
    ex = tokenize_sft({"prompt": "2+2=", "completion": "4"}, tokenizer, 64, chat_template=False)
    assert trained(ex, tokenizer) == encode(tokenizer, "4") + ["<|end|>"]
    assert ex["input_ids"][: -len(trained(ex, tokenizer))] == tokenizer("2+2=")["input_ids"]


def test_text_records_train_every_token(tokenizer):
    ex = tokenize_sft({"text": "Hello world."}, tokenizer, 64)
    assert ex["labels"] == ex["input_ids"]
    assert trained(ex, tokenizer) == encode(tokenizer, "Hello world.") + ["<|end|>"]


def test_truncation_drops_and_counts_samples_without_supervised_tokens(tokenizer):
    long_prompt = {"prompt": "word " * 200, "completion": "Short."}
    ok = {"prompt": "Q", "completion": "A fine answer."}
    assert tokenize_sft(long_prompt, tokenizer, 32) is None
    kept = tokenize_sft({"prompt": "Q", "completion": "word " * 100}, tokenizer, 32)
    assert len(kept["input_ids"]) == 32 and kept["labels"][-1] != IGNORE
    examples, stats = build_sft_examples([long_prompt, ok, long_prompt], tokenizer, 32)
    assert (stats.n_records, stats.n_examples, stats.n_dropped) == (3, 1, 2)
    assert stats.n_supervised_tokens == len(trained(examples[0], tokenizer))
    with pytest.raises(DataError, match="all 2 records were dropped"):
        build_sft_examples([long_prompt, long_prompt], tokenizer, 32)


def test_bad_messages_name_the_record(tokenizer):
    with pytest.raises(DataError, match=r"record 2: record.messages\[0\]"):
        build_sft_examples(
            [{"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]},
             {"messages": [{"role": "user"}]}],
            tokenizer,
            64,
        )


def test_no_chat_template_is_a_clear_error(tokenizer):
    tok = copy.deepcopy(tokenizer)
    tok.chat_template = None
    with pytest.raises(DataError, match="chat_template: false"):
        tokenize_sft({"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]}, tok, 64)

"""Small shared builders for preference tests: random tiny Llamas and toy batches."""

from __future__ import annotations

import torch


def tiny_llama(seed: int = 0, vocab: int = 64, num_labels: int | None = None):
    """A randomly initialised 2-layer Llama (causal LM, or a 1-output classifier)."""
    from transformers import LlamaConfig, LlamaForCausalLM, LlamaForSequenceClassification

    torch.manual_seed(seed)
    cfg = LlamaConfig(
        vocab_size=vocab,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=128,
        pad_token_id=0,
        eos_token_id=1,
        bos_token_id=2,
    )
    if num_labels is not None:
        cfg.num_labels = num_labels
        return LlamaForSequenceClassification(cfg).eval()
    return LlamaForCausalLM(cfg).eval()


def toy_pair_batch(n_pairs: int = 3, seed: int = 0, vocab: int = 64) -> dict[str, torch.Tensor]:
    """[chosen rows; rejected rows], right padded, with uneven prompt/completion lengths."""
    g = torch.Generator().manual_seed(seed)
    rows, masks = [], []
    for half in range(2):
        for i in range(n_pairs):
            p_len, c_len = 2 + (i % 3), 2 + ((i + half) % 4)
            ids = torch.randint(3, vocab, (p_len + c_len,), generator=g)
            rows.append(ids)
            masks.append(torch.cat([torch.zeros(p_len), torch.ones(c_len)]).long())
    width = max(len(r) for r in rows)
    input_ids = torch.zeros(len(rows), width, dtype=torch.long)
    attention = torch.zeros_like(input_ids)
    completion = torch.zeros_like(input_ids)
    for i, (r, m) in enumerate(zip(rows, masks)):
        input_ids[i, : len(r)] = r
        attention[i, : len(r)] = 1
        completion[i, : len(r)] = m
    return {"input_ids": input_ids, "attention_mask": attention, "completion_mask": completion}


WORDS = ["<pad>", "<eot>", "<bos>", "<unk>", "<|user|>", "<|assistant|>", "<|system|>"] + [
    "a", "b", "c", "good", "bad", "answer", "question", "why", "is", "sky", "blue", "because", "light", "scatters",
    "it", "just", "random", "words", "the", "be", "summarise", "this",
]
CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m.role }}|> {{ m.content }} <eot> {% endfor %}"
    "{% if add_generation_prompt %}<|assistant|> {% endif %}"
)


def word_tokenizer(pad_is_eos: bool = False, chat_template: bool = True):
    """A whitespace word-level tokenizer (ids hand-checkable) with a chat template; eos = <eot>."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(WORDS)}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token="<eot>", unk_token="<unk>", pad_token="<eot>" if pad_is_eos else "<pad>"
    )
    if chat_template:
        fast.chat_template = CHAT_TEMPLATE
    return fast


def ids(*words: str) -> list[int]:
    return [WORDS.index(w) for w in words]

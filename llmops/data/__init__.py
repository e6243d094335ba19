"""Data pipeline: load records, detect their format, tokenise with label masking, batch and pack.

    records = load_records("data/train.jsonl")            # or builtin:docstrings, .csv, .parquet, a datasets dir
    examples, stats = build_sft_examples(records, tokenizer, max_length=512)
    batch = SFTCollator(tokenizer.pad_token_id)(examples[:8])
"""

from llmops.data.collate import PackedCollator, SFTCollator, block_causal_mask, pack_examples
from llmops.data.formats import (
    FORMATS,
    dataset_fingerprint,
    detect_format,
    preference_messages,
    record_format,
    to_messages,
)
from llmops.data.loaders import load_records
from llmops.data.sft import IGNORE, SFTStats, build_sft_examples, tokenize_sft

__all__ = [
    "FORMATS",
    "IGNORE",
    "PackedCollator",
    "SFTCollator",
    "SFTStats",
    "block_causal_mask",
    "build_sft_examples",
    "dataset_fingerprint",
    "detect_format",
    "load_records",
    "pack_examples",
    "preference_messages",
    "record_format",
    "to_messages",
    "tokenize_sft",
]

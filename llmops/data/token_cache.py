"""Tokenise once per run, not once per rank: tokenised splits cached under a fingerprint.

Under ``accelerate launch`` every rank used to load and tokenise the whole dataset
itself (N ranks, N times the work, N times the peak memory during tokenisation). The
engine's tasks now wrap tokenisation in `load_or_build` inside
``accelerator.main_process_first()``: rank 0 tokenises and writes
``<run_dir>/tokenized/<key>.pkl`` (temporary name, then rename); the other ranks, let in
after it, load that file. A ``--resume`` reuses it too. The key hashes everything the
result depends on — the datasets' content fingerprints, the tokenizer (vocabulary,
merges, special tokens, chat template), ``data.*`` settings and the task — so a changed
input never reads a stale cache.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import pickle
from pathlib import Path
from typing import Any, Callable, TypeVar

log = logging.getLogger(__name__)
T = TypeVar("T")
FORMAT = 1  # bump when the cached structure changes


def tokenizer_fingerprint(tokenizer: Any) -> str:
    """sha256 of what tokenisation depends on: the tokenizer's full state and its chat template."""
    h = hashlib.sha256()
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        h.update(backend.to_str().encode())
    else:  # slow tokenizers: vocabulary and special tokens
        h.update(json.dumps(sorted(tokenizer.get_vocab().items())).encode())
    h.update(json.dumps([tokenizer.chat_template, tokenizer.pad_token, tokenizer.eos_token, tokenizer.bos_token,
                         tokenizer.padding_side, getattr(tokenizer, "add_bos_token", None)], default=str).encode())
    return h.hexdigest()


def cache_key(**parts: Any) -> str:
    """Stable hash of the (JSON-serialisable) inputs of a tokenisation."""
    return hashlib.sha256(json.dumps({"format": FORMAT, **parts}, sort_keys=True, default=str).encode()).hexdigest()


def load_or_build(cache_dir: Path | None, key: str, build: Callable[[], T]) -> T:
    """The cached value for `key`, or `build()` written to the cache (atomically) and returned."""
    if cache_dir is None:
        return build()
    path = Path(cache_dir) / f"{key[:32]}.pkl"
    if path.is_file():
        with path.open("rb") as f:
            log.info("tokenised data from cache %s", path)
            return pickle.load(f)
    value = build()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with tmp.open("wb") as f:
        pickle.dump(value, f, protocol=pickle.HIGHEST_PROTOCOL)
    os.replace(tmp, path)
    return value

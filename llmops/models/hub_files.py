"""Which files of a hub repository a model needs: download those, not the whole repo.

Hub repos often carry every weight format at once (``model.safetensors`` and
``pytorch_model.bin``, ``original/consolidated.pth``, ``onnx/``, ``*.gguf``, TF/Flax
weights): a full ``snapshot_download`` of a 7B Llama fetches ~3x its size. A model needs
its top-level config, tokenizer and chat-template files, remote code (``*.py``) and one
weight format: safetensors when present, else PyTorch ``.bin``.
"""

from __future__ import annotations

from collections.abc import Iterable

_SMALL_SUFFIXES = (".json", ".jinja", ".model", ".txt", ".tiktoken", ".py")
_SAFETENSORS = (".safetensors",)
_TORCH_BIN = (".bin",)


def needed_files(repo_files: Iterable[str]) -> list[str]:
    """The repo paths to download (sorted). Subfolders (``original/``, ``onnx/``…) are skipped."""
    top = [f for f in repo_files if "/" not in f]
    keep = [f for f in top if f.endswith(_SMALL_SUFFIXES) and not f.endswith(".bin.index.json")]
    safetensors = [f for f in top if f.endswith(_SAFETENSORS)]
    if safetensors:
        keep += safetensors
    else:
        keep += [f for f in top if f.endswith(_TORCH_BIN) and not f.startswith(("training_args", "optimizer"))]
        keep += [f for f in top if f.endswith(".bin.index.json")]
    if safetensors:
        keep = [f for f in keep if not f.endswith(".bin.index.json")]
    return sorted(set(keep))


def download_model(repo_id: str, revision: str | None = None) -> str:
    """snapshot_download restricted to `needed_files`; returns the snapshot directory."""
    from huggingface_hub import HfApi, snapshot_download

    files = HfApi().list_repo_files(repo_id, revision=revision)
    return snapshot_download(repo_id, revision=revision, allow_patterns=needed_files(files))

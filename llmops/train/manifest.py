"""Run records: ``manifest.json`` (what ran, on what, with what result) and ``metrics.jsonl``.

The manifest is rewritten atomically (temporary file, then rename) at start, at each
checkpoint and at the end, so a reader or a killed run never sees half a file; its
``status`` is ``running``, ``completed`` or ``failed``. ``metrics.jsonl`` has one JSON
object per logging step (``"kind": "train"``) or validation (``"kind": "eval"``);
a resumed run first drops lines past its checkpoint so the file reads as one run.
"""

from __future__ import annotations

import json
import os
import platform
import socket
import sys
import time
import uuid
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

MANIFEST = "manifest.json"
METRICS = "metrics.jsonl"


def new_run_id() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:8]


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def library_versions() -> dict[str, str]:
    """Versions that decide numerics and file formats."""
    out = {"python": platform.python_version()}
    for dist in ("llmops", "torch", "transformers", "peft", "accelerate", "datasets", "tokenizers", "safetensors"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "not installed"
    return out


def host_info() -> dict[str, Any]:
    import torch

    info: dict[str, Any] = {"hostname": socket.gethostname(), "platform": platform.platform(), "cpus": os.cpu_count()}
    if torch.cuda.is_available():
        info["gpus"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return info


def write_json_atomic(path: Path, payload: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(payload, indent=2, sort_keys=False, default=str) + "\n")
    os.replace(tmp, path)


def read_manifest(run_dir: Path) -> dict[str, Any] | None:
    path = run_dir / MANIFEST
    return json.loads(path.read_text()) if path.exists() else None


class MetricsLog:
    """Append-only ``metrics.jsonl`` (written by the main process only)."""

    def __init__(self, run_dir: Path, enabled: bool):
        self.path = run_dir / METRICS
        self.enabled = enabled

    def truncate_after(self, step: int) -> None:
        """Drop records of steps past `step` (written by a run that was then killed)."""
        if not self.enabled or not self.path.exists():
            return
        kept = []
        for line in self.path.read_text().splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue  # a line torn by SIGKILL
            if record.get("step", 0) <= step:
                kept.append(line)
        tmp = self.path.with_suffix(".jsonl.tmp")
        tmp.write_text("".join(f"{line}\n" for line in kept))
        os.replace(tmp, self.path)

    def reset(self) -> None:
        if self.enabled and self.path.exists():
            self.path.unlink()

    def write(self, record: dict[str, Any]) -> None:
        if not self.enabled:
            return
        with self.path.open("a") as fh:
            fh.write(json.dumps(record, default=float) + "\n")
            fh.flush()

    def read(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text().splitlines() if line.strip()]


class Stopwatch:
    """Wall time that survives resumes: time of earlier attempts plus this one."""

    def __init__(self, earlier_s: float = 0.0):
        self.earlier_s = earlier_s
        self.start = time.perf_counter()

    def total(self) -> float:
        return self.earlier_s + (time.perf_counter() - self.start)


def command_line() -> str:
    return " ".join(sys.argv)

"""Restartable stages with visible progress.

A `StageRunner` runs named stages in order. Each stage's result (a JSON-able dict) and
its wall time are written to ``state.json`` in the output directory (atomically) as soon
as it finishes, so a re-run skips every stage whose record is there and whose declared
outputs still exist, and resumes at the first stage that is missing. One line per stage
goes to stderr with the elapsed time, so progress is visible while it runs.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

STATE = "state.json"


def write_text_atomic(path: Path, text: str) -> None:
    """Write through a temporary file and a rename: readers never see half a file, a kill leaves none."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def write_json_atomic(path: Path, payload: Any) -> None:
    """`write_text_atomic` of indented JSON."""
    write_text_atomic(path, json.dumps(payload, indent=2, default=str) + "\n")


class StageRunner:
    """Runs stages once; records results and timings in ``<out>/state.json``."""

    def __init__(self, out_dir: Path, n_stages: int, *, fingerprint: dict[str, Any], stream=None) -> None:
        self.out_dir = out_dir
        self.path = out_dir / STATE
        self.n_stages = n_stages
        self.stream = stream or sys.stderr
        self.started = time.perf_counter()
        self.index = 0
        state = json.loads(self.path.read_text()) if self.path.exists() else {}
        if state and state.get("fingerprint") != fingerprint:
            from llmops.errors import UserError

            raise UserError(
                f"{self.path} was written with other settings ({state.get('fingerprint')}); "
                f"use another --out directory or delete it"
            )
        self.state: dict[str, Any] = state or {"fingerprint": fingerprint, "stages": {}}

    def _say(self, text: str) -> None:
        print(f"[{time.perf_counter() - self.started:7.1f}s] {text}", file=self.stream, flush=True)

    def run(self, name: str, fn: Callable[[], dict[str, Any]], outputs: Callable[[dict], list[Path]] | None = None,
            title: str | None = None) -> dict[str, Any]:
        """Run `fn` unless a finished record of `name` exists and all its `outputs` still exist."""
        self.index += 1
        label = f"[{self.index}/{self.n_stages}] {title or name}"
        done = self.state["stages"].get(name)
        if done is not None and all(Path(p).exists() for p in (outputs(done["result"]) if outputs else [])):
            self._say(f"{label}: done earlier ({done['seconds']:.1f}s), skipped")
            return done["result"]
        self._say(f"{label} ...")
        t0 = time.perf_counter()
        result = fn()
        seconds = time.perf_counter() - t0
        self.state["stages"][name] = {"result": result, "seconds": seconds, "title": title or name}
        write_json_atomic(self.path, self.state)
        self._say(f"{label}: done in {seconds:.1f}s")
        return result

    def timings(self) -> list[dict[str, Any]]:
        return [{"stage": k, "title": v.get("title", k), "seconds": v["seconds"]} for k, v in self.state["stages"].items()]

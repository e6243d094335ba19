"""An append-only JSONL log of generation requests, for the monitors.

One line per request that reached generation: ``{"ts", "status", "endpoint",
"latency_s", "model_version", "prompt" | "messages", "completion_tokens"}``. It is what
``llmops monitor drift --current`` reads (prompts) and what an ``error_rate`` alert rule
reads (status >= 500 counts as an error). Requests refused by validation (4xx before
generation) carry no usable prompt and are not logged: they are the client's errors,
counted in ``llmops_serve_requests_total``. The file is created (and kept) with mode 0600.
"""

from __future__ import annotations

import json
import os
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Any


class RequestLog:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path).expanduser()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        # Prompts are user data: the log is readable by its owner only (0600), whatever the umask.
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        os.chmod(self.path, 0o600)  # an existing file keeps no wider mode either
        self._fh = os.fdopen(fd, "a", encoding="utf-8")

    def write(self, record: dict[str, Any]) -> None:
        line = json.dumps({"ts": datetime.now(timezone.utc).isoformat(), **record}, ensure_ascii=False)
        with self._lock:
            self._fh.write(line + "\n")
            self._fh.flush()

    def close(self) -> None:
        with self._lock:
            self._fh.close()

"""Run an ASGI app with uvicorn in a background thread, for a bounded time.

>>> with ServerThread(create_app("builtin:tiny")) as srv:
...     httpx.post(f"{srv.url}/v1/completions", json={"prompt": "Hello", "max_tokens": 8})

The socket is bound before the thread starts (port 0 picks a free one, with no race
between choosing and binding), and `__enter__` returns once the server accepts
connections and the app's startup (the batch worker) has run; `__exit__` asks uvicorn
to finish in-flight requests, runs the app's shutdown and joins the thread.
"""

from __future__ import annotations

import socket
import threading
import time
from typing import Any


class ServerThread:
    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0, *, log_level: str = "warning",
                 startup_timeout_s: float = 60.0) -> None:
        import uvicorn

        self.host = host
        self._sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((host, port))
        self.port: int = self._sock.getsockname()[1]
        config = uvicorn.Config(app, log_level=log_level, lifespan="on", timeout_graceful_shutdown=10)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._run, name=f"uvicorn-{self.port}", daemon=True)
        self._startup_timeout_s = startup_timeout_s
        self._error: BaseException | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def _run(self) -> None:
        try:
            self._server.run(sockets=[self._sock])
        except BaseException as exc:  # noqa: BLE001 - reported to the starting thread
            self._error = exc

    def start(self) -> ServerThread:
        self._thread.start()
        deadline = time.monotonic() + self._startup_timeout_s
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"server on {self.url} did not start: {self._error or 'timeout'}")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join()
        self._sock.close()

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

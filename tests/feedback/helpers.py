"""Helpers of the feedback tests: API keys per role, item creation, a real uvicorn server."""

from __future__ import annotations

from dataclasses import dataclass

from servers import REPO, ServerProcess, free_port  # noqa: F401  (re-exported for the feedback tests)


@dataclass
class Keys:
    admin: str
    service: str
    rater: str
    rater2: str
    client: str = ""

    def headers(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {getattr(self, role)}"}


def make_keys(db_url: str) -> Keys:
    from llmops.db import session_factory, upgrade
    from llmops.feedback.auth import create_key

    upgrade(db_url)
    with session_factory(db_url)() as s, s.begin():
        tokens = {
            "admin": create_key(s, "admin", "admin").token,
            "service": create_key(s, "service", "model-server").token,
            "rater": create_key(s, "rater", "alice").token,
            "rater2": create_key(s, "rater", "bob").token,
            "client": create_key(s, "client", "app-backend").token,
        }
    return Keys(**tokens)


def new_item(client, keys: Keys, n: int = 2, **extra) -> dict:
    body = {"prompt": "Say hi", "responses": [{"text": f"answer {i}", "model": f"m{i % 2}"} for i in range(n)], **extra}
    r = client.post("/v1/items", json=body, headers=keys.headers("service"))
    assert r.status_code == 201, r.text
    return r.json()


class Server(ServerProcess):
    """`llmops feedback serve` as a real subprocess (so it can be SIGKILLed); its stderr is kept."""

    name = "llmops feedback serve"

    def __init__(self, db_url: str, workers: int = 1, args: list[str] | None = None) -> None:
        self.db_url, self.workers, self.args = db_url, workers, list(args or [])
        super().__init__(["feedback", "serve", "--db", db_url, "--workers", str(workers), *self.args],
                         capture_stdout=False)

    def stderr(self) -> str:
        return self.output()

"""Helpers of the UI tests: API keys per role, `llmops ui` as a real server, a no-console-errors check."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from browsers import CHROMIUM, CHROMIUM_ARGS  # noqa: F401  (re-exported for the UI tests)
from servers import REPO, ServerProcess, free_port  # noqa: F401  (re-exported for the UI tests)


@dataclass(frozen=True)
class Keys:
    admin: str
    rater: str
    client: str


def make_keys(db_url: str) -> Keys:
    """One key per role that matters to the UI (the schema is created first)."""
    from llmops.db import session_factory, upgrade
    from llmops.feedback.auth import create_key

    upgrade(db_url)
    with session_factory(db_url)() as s, s.begin():
        return Keys(admin=create_key(s, "admin", "ada").token, rater=create_key(s, "rater", "rita").token,
                    client=create_key(s, "client", "app").token)


class UiServer(ServerProcess):
    """`llmops ui` as a subprocess on a free port (stdout and stderr go to a file, shown on failure)."""

    name = "llmops ui"

    def __init__(self, db_url: str, runs_dirs: list[Path], args: list[str] | None = None) -> None:
        self.db_url, self.runs_dirs, self.args = db_url, runs_dirs, list(args or [])
        runs = [a for d in runs_dirs for a in ("--runs-dir", str(d))]
        super().__init__(["ui", "--db", db_url, *runs, *self.args])


def login(page, base: str, key: str) -> None:
    """Log in through the login form (the cookie stays in the page's browser context)."""
    page.goto(base + "/login")
    page.fill("#key", key)
    page.click("form[action='/login'] button[type=submit]")
    page.wait_for_url(base + "/")


def watch_console(page) -> tuple[list[str], list[tuple[str, object]]]:
    """Collect console errors, uncaught exceptions, failed requests and 4xx/5xx responses of a page.

    Returns (problems, handlers); pass the handlers to `unwatch` when done with this page load.
    """
    problems: list[str] = []
    handlers = [
        ("console", lambda m: problems.append(f"console.{m.type}: {m.text}") if m.type == "error" else None),
        ("pageerror", lambda e: problems.append(f"pageerror: {e}")),
        ("requestfailed", lambda r: problems.append(f"request failed: {r.url} {r.failure}")),
        ("response", lambda r: problems.append(f"HTTP {r.status}: {r.url}") if r.status >= 400 else None),
    ]
    for event, handler in handlers:
        page.on(event, handler)
    return problems, handlers


def unwatch(page, handlers: list[tuple[str, object]]) -> None:
    for event, handler in handlers:
        page.remove_listener(event, handler)


def assert_page_clean(page, url: str, *, expect_status: int = 200) -> None:
    """Load `url` and assert it answered `expect_status` with no console errors, failed or foreign requests."""
    problems, handlers = watch_console(page)
    foreign: list[str] = []
    origin = url.split("/", 3)[:3]

    def on_request(r) -> None:
        if r.url.split("/", 3)[:3] != origin and not r.url.startswith("data:"):
            foreign.append(r.url)

    handlers.append(("request", on_request))
    page.on("request", on_request)
    try:
        response = page.goto(url)
        assert response is not None and response.status == expect_status, (url, response and response.status)
        page.wait_for_load_state("networkidle")  # subresources (the icon too) answered before we judge
    finally:
        unwatch(page, handlers)
    if expect_status < 400:
        assert problems == [], (url, problems)
    else:  # the page's own error status is expected; nothing else may fail
        assert [p for p in problems if not p.startswith("HTTP ") and "status of" not in p] == [], (url, problems)
    assert foreign == [], (url, foreign)


def write_run(root: Path, name: str, *, task: str = "sft", lr: float = 1e-3, steps: int = 20, status: str = "completed",
              tags: tuple[str, ...] = (), started: str = "2026-11-01T10:00:00+00:00") -> Path:
    """A run folder in the engine's layout (manifest.json, metrics.jsonl, a checkpoint and a log)."""
    import json
    import math

    d = root / name
    (d / "checkpoints" / f"step-{steps}").mkdir(parents=True)
    (d / "checkpoints" / f"step-{steps}" / "llmops_checkpoint.json").write_text(json.dumps({"step": steps}))
    recipe = {"recipe": task, "model": {"base": "builtin:tiny"}, "train": {"lr": lr, "max_steps": steps},
              "card": {"tags": list(tags)}}
    records = []
    for step in range(0, steps + 1, 5):
        if step:
            records.append({"kind": "train", "step": step, "loss": 3 * math.exp(-lr * 100 * step), "lr": lr,
                            "tokens_per_s": 100.0 + step, "tokens": 500})
        if step % 10 == 0:
            records.append({"kind": "eval", "step": step, "eval_loss": 3.2 * math.exp(-lr * 80 * step)})
    (d / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    manifest = {"run_id": f"id-{name}", "started_at": started, "status": status, "recipe_name": task,
                "recipe_source": f"/recipes/{task}_lora.yaml", "recipe": recipe, "base_model_ref": "builtin:tiny",
                "steps_completed": steps, "max_steps": steps, "wall_time_s": 12.5, "tokens_per_s": 110.0,
                "final_metrics": {"train_loss": records[-2]["loss"], "eval_loss": records[-1]["eval_loss"]},
                "attempts": [{"started_at": started, "resumed_from_step": None, "command": "llmops train x.yaml"}]}
    (d / "manifest.json").write_text(json.dumps(manifest))
    (d / "train.log").write_text("step 5 loss 2.9\n<script>alert(1)</script>\n")
    return d


def build_random_llama(out_dir: Path, seed: int) -> Path:
    """A 2-layer random Llama with a real BPE tokenizer (seconds to build; two seeds give different outputs)."""
    import torch
    from transformers import AutoModelForCausalLM, LlamaConfig

    from llmops.data import load_records
    from llmops.models.tokenizer_build import save_portable, train_bpe, wrap_hf

    texts = [r["prompt"] + " " + r["completion"] for r in load_records("builtin:docstrings", split="train")[:300]]
    tok = wrap_hf(train_bpe(texts, vocab_size=400), model_max_length=512)
    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                         initializer_range=0.3, pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id,
                         bos_token_id=None, tie_word_embeddings=True)
    AutoModelForCausalLM.from_config(config, dtype=torch.float32).save_pretrained(str(out_dir))
    save_portable(tok, out_dir)
    return out_dir

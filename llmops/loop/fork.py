"""Fork a quickstart run: keep its stages up to the feedback and reward model, redo v2 onwards.

Trying another way of learning from the *same* feedback (another `improve` method, rounds,
learning rate) should not repeat SFT, the simulated traffic and the raters. A fork copies
the run's database (a consistent SQLite backup) and registry artifacts into a new
directory, keeps the finished stages before v2, and records the new settings as the
fork's fingerprint; `llmops quickstart --out NEW` then resumes at v2. Settings that
change an earlier stage (seed, SFT steps, traffic) are refused: they would not be redone.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path
from typing import Any

from llmops.errors import UserError
from llmops.loop.progress import STATE, write_json_atomic
from llmops.loop.settings import QuickstartSettings

# stages a fork redoes (everything from training v2 on); the rest is copied
REDONE_PREFIXES = ("v2_", "eval_v2", "promote_v2", "quality", "drift", "report")
# settings that only decide how v2 is trained, evaluated against v1 and promoted
V2_SETTINGS = {"improve", "dpo_steps", "dpo_lr", "dpo_select", "dpo_eval_every", "dpo_strategy", "dpo_rpo_alpha",
               "corrections_strategy", "corrections_rpo_alpha",
               "select_prompts", "rft_steps",
               "rft_min_rating", "min_delta", "ab_prompts", "pref_batch_size"} | {
    f for f in QuickstartSettings.__dataclass_fields__ if f.startswith("iter_")}


def fork(src: Path, dst: Path, settings: QuickstartSettings) -> dict[str, Any]:
    """Copy run `src` into `dst` for a re-run of v2 with `settings`; returns the new state."""
    state_path = src / STATE
    if not state_path.exists():
        raise UserError(f"--fork-from {src}: no {STATE} there (not a quickstart run)")
    state = json.loads(state_path.read_text())
    old = state["fingerprint"]["settings"]
    new = settings.as_dict()
    changed = sorted(k for k in new if old.get(k) != new[k] and k not in V2_SETTINGS)
    if changed:
        raise UserError(f"--fork-from {src}: {', '.join(changed)} would change stages before v2; "
                        "run a fresh quickstart for that")
    if "reward" not in state["stages"]:
        raise UserError(f"--fork-from {src}: the run has not finished its reward model stage yet")
    if (dst / STATE).exists() or (dst / "llmops.db").exists():
        raise UserError(f"--out {dst} already holds a run; fork into a new directory")
    dst.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(src / "llmops.db") as a, sqlite3.connect(dst / "llmops.db") as b:
        a.backup(b)  # consistent, WAL included
    if (src / "registry").exists():
        shutil.copytree(src / "registry", dst / "registry")
    kept = {k: v for k, v in state["stages"].items() if not k.startswith(REDONE_PREFIXES)}
    db = f"sqlite:///{(dst / 'llmops.db').resolve()}"
    forked = {"fingerprint": {"settings": new, "db": db}, "stages": kept, "forked_from": str(src.resolve())}
    _aliases_back_to_v1(state, dst, db, settings.name)
    write_json_atomic(dst / STATE, forked)
    return forked


def _aliases_back_to_v1(state: dict[str, Any], dst: Path, db: str, name: str) -> None:
    """A finished source run may have promoted its v2: the copy starts again from v1 in staging and
    production (audited alias moves). The source's later versions stay registered, so the fork's v2
    gets the next free version number."""
    import os

    v1 = state["stages"].get("register_v1", {}).get("result", {}).get("version")
    if v1 is None:
        return
    from llmops.registry import api

    saved = os.environ.get("LLMOPS_REGISTRY_ROOT")
    os.environ["LLMOPS_REGISTRY_ROOT"] = str((dst / "registry").resolve())
    try:
        store = api.get_store(db)
        for alias in ("staging", "production"):
            if store.alias_version(name, alias) not in (None, v1):
                api.set_alias(name, alias, v1, reason="quickstart fork: redo v2 from v1", db_url=db)
    finally:
        if saved is None:
            os.environ.pop("LLMOPS_REGISTRY_ROOT", None)
        else:
            os.environ["LLMOPS_REGISTRY_ROOT"] = saved

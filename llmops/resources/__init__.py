"""Files shipped inside the package: recipes, evaluation suites and metric modules, the rater page.

    recipes/   training recipes, accelerate configs, gates, alert rules, loop configs
    eval/      evaluation suites and the local `evaluate` metric modules (eval/metrics/NAME)
    feedback/  the rater page served by `llmops feedback serve`

They live here, not at the top of the checkout, so that a wheel installed anywhere has them
(`llmops quickstart`, `llmops loop` and the rater page need them). A checkout still shows
`recipes/`, `eval/` and `feedback/` at its top: those are symbolic links to these folders,
so every file exists once and is edited where a user expects it. Links were chosen over
generating copies at build time because copies drift (an edit to one is silently lost in
the other) and over thin pointer files because the suites and recipes refer to each other by
relative path (`recipes/loop/default.yaml` names `../../eval/docstring_summary.yaml`),
which holds in both places only when the tree is the same.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from llmops.errors import ConfigError

KINDS = ("recipes", "eval", "feedback")


def root() -> Path:
    """The folder holding the shipped resources (inside the installed package)."""
    return Path(str(resources.files(__name__)))


def path(relative: str = "") -> Path:
    """A shipped file or folder, e.g. ``path("recipes/sft_lora.yaml")``; a clear error if missing."""
    target = root() / relative
    if not target.exists():
        top = relative.split("/", 1)[0]
        hint = f" (shipped kinds: {', '.join(KINDS)})" if top not in KINDS else ""
        raise ConfigError(f"no shipped resource `{relative}` in {root()}{hint}")
    return target


def shipped_fallback(user_path: str | Path) -> Path:
    """`user_path` when it exists; else, for a relative ``recipes/…`` or ``eval/…`` path, the
    shipped file of that name (so `llmops train recipes/sft_lora.yaml` works outside a
    checkout); else `user_path` unchanged, for the caller's own "not found" error."""
    p = Path(user_path)
    if p.exists() or p.is_absolute() or not p.parts or p.parts[0] not in KINDS:
        return p
    shipped = root() / p
    return shipped if shipped.exists() else p

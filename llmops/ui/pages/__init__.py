"""Page registration: one router module per area, loaded in `PAGE_MODULES` order.

A page module defines ``router`` (a FastAPI `APIRouter` whose routes all declare
``Depends(guard(UiAction...))``) and ``NAV = (label, href)`` for the top bar (or ``None``).
Add an area by writing ``llmops/ui/pages/<area>.py`` and listing it here; a module not
present in this build is skipped, like the CLI's command modules.
"""

from __future__ import annotations

import importlib
from types import ModuleType

PAGE_MODULES = [
    "llmops.ui.pages.home",
    "llmops.ui.pages.studies",  # before runs: /runs/studies is not /runs/{id}
    "llmops.ui.pages.runs",
    "llmops.ui.pages.evals",
    "llmops.ui.pages.registry",
    "llmops.ui.pages.monitoring",
    "llmops.ui.pages.feedback",
]


def load_pages() -> list[ModuleType]:
    """The page modules present in this build, in nav order."""
    modules = []
    for name in PAGE_MODULES:
        try:
            modules.append(importlib.import_module(name))
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
    return modules

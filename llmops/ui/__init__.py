"""`llmops ui`: one server-rendered web UI over runs, evaluations, the registry, feedback and monitoring.

It sits above the subsystems it shows and renders from their public functions (the ones the
CLI calls), never from their tables. See docs/ui.md.
"""

from llmops.ui.app import create_app

__all__ = ["create_app"]

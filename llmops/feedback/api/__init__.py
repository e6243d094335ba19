"""The feedback HTTP API: `create_app(db_url)` builds the FastAPI application."""

from llmops.feedback.api.app import create_app

__all__ = ["create_app"]

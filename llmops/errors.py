"""Errors that carry a message meant for the user.

Anything raised as a `UserError` is printed by the CLI as one line (no traceback)
and the process exits with code 2. Use it for bad input: recipes, files, references.
"""

from __future__ import annotations


class UserError(Exception):
    """Bad input from the user; the message names what is wrong and where."""

    exit_code = 2


class ConfigError(UserError):
    """An invalid recipe, override or configuration file."""


class DataError(UserError):
    """An unreadable or unusable dataset."""


class ModelRefError(UserError):
    """A model reference that cannot be resolved."""

"""Cyclic garbage collector policy around the heavy imports of a command-line process.

torch + transformers create about 370,000 long-lived objects when imported. CPython's cyclic
collector runs a full collection each time the objects it tracks have grown by a quarter, so
importing them costs several full passes over an ever larger heap; every later full
collection walks them all again, and so does interpreter exit. Measured on the 200-prompt
`llmops eval run` (2 CPUs): ~0.9 s of the exit alone was that final pass, and the passes
during the imports another few tenths.

- `heavy_import(module)`: pauses the collector while `module` is first imported (a no-op
  once it is in ``sys.modules``); in a command-line process it then moves every object alive
  to the permanent generation (`gc.freeze`), so later collections skip what the imports
  built. Objects are still freed by reference counting; only reference cycles among frozen
  objects are never collected, which in a process that exits after one command is at most
  what existed at that moment.
- `use_in_this_process()`: called by the CLI entry point (never by library callers such as
  tests, which would otherwise freeze their own garbage): enables the freeze. After the first
  freeze the process freezes once more at exit, so that the final pass skips the heap as
  well; commands that import no heavy library (databases, servers) keep the default exit.
"""

from __future__ import annotations

import atexit
import gc
import sys
from collections.abc import Iterator
from contextlib import contextmanager

_freeze = False


def use_in_this_process() -> None:
    """This process runs one command and exits: freeze after heavy imports, and at exit."""
    global _freeze
    _freeze = True


@contextmanager
def heavy_import(module: str) -> Iterator[None]:
    """Pause the cyclic collector while `module` is imported for the first time."""
    if module in sys.modules:
        yield
        return
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if _freeze:
            if not gc.get_freeze_count():
                atexit.register(gc.freeze)  # runs before the interpreter's final collections
            gc.freeze()
        if enabled:
            gc.enable()

"""Which model answers: resolve the reference, load a backend, follow a registry alias.

For ``registry:NAME@ALIAS`` a watcher thread asks the registry for the alias's version
every ``poll_interval_s`` (one indexed row read). When it changes, the watcher loads the
new version *beside* the old one and publishes it; the batch worker takes it at its next
batch boundary (`ModelHost.current`), so requests keep being served while the new
weights load, every batch runs on exactly one version, and in-flight batches finish on
the old one. A version that fails to load is logged and skipped (the old one keeps
serving) until the alias moves again. The price: two models in memory during a swap.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llmops.errors import ModelRefError, UserError
from llmops.eval.backends.base import Backend
from llmops.models.refs import ModelRef, ResolvedModel, parse_ref, resolve

log = logging.getLogger(__name__)


@dataclass
class LoadedModel:
    """One loaded version; only the batch worker calls its backend."""

    backend: Backend
    served_ref: str  # what the server was started with, e.g. registry:docs@production
    resolved_ref: str  # the immutable reference that answered, e.g. registry:docs/3
    version: str  # "docs/3" for registry models, else the model hash
    sha256: str
    path: Path
    loaded_at: float = field(default_factory=time.time)

    @property
    def fingerprint(self) -> str:
        return f"fp_{self.sha256[:16]}"

    def describe(self) -> dict[str, Any]:
        return {"model": self.served_ref, "resolved": self.resolved_ref, "model_version": self.version,
                "model_sha256": self.sha256, "loaded_at": self.loaded_at}


BackendFactory = Callable[[ResolvedModel], Backend]  # a resolved model -> backend


@dataclass(frozen=True)
class Target:
    """A concrete model to load: where it is and how it is named."""

    resolved_ref: str
    version: str
    sha256: str
    model: ResolvedModel

    @property
    def path(self) -> Path:
        return self.model.path


class ModelHost:
    """Holds the current model and, for a registry alias, swaps in the alias's new target."""

    def __init__(self, model_ref: str, factory: BackendFactory, db_url: str | None = None,
                 poll_interval_s: float = 5.0) -> None:
        self.served_ref = model_ref
        self.ref: ModelRef = parse_ref(model_ref)
        self.db_url = db_url
        self.poll_interval_s = poll_interval_s
        self._factory = factory
        self._lock = threading.Lock()  # guards _pending (watcher publishes, worker takes)
        self._check_lock = threading.Lock()  # one alias check (and load) at a time
        self._pending: LoadedModel | None = None
        self._failed_version: int | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.swaps = 0
        self.last_error: str | None = None
        # Read the alias once and load exactly that version: a move in between is caught by the next check.
        self._watched_version = self._alias_version() if self.watches_alias else None
        self._current = self._load(self._target(self._watched_version))

    # ------------------------------------------------------------ resolution

    @property
    def watches_alias(self) -> bool:
        return self.ref.kind == "registry" and self.ref.registry_parts[2] is None

    def _alias_version(self) -> int | None:
        from llmops.registry.api import get_store, get_version

        name, alias, _ = self.ref.registry_parts
        try:
            if alias == "latest":  # not a stored alias: the newest version
                return get_version(name, db_url=self.db_url).version
            return get_store(self.db_url).alias_version(name, alias)
        except UserError as exc:  # e.g. no such model
            raise ModelRefError(f"{self.served_ref}: {exc}") from None

    def _target(self, version: int | None = None) -> Target:
        """Resolve the served reference (or a given version of its registry model) to a directory."""
        if self.ref.kind == "registry":
            from llmops.registry.api import get_version

            name, alias, pinned = self.ref.registry_parts
            try:
                mv = get_version(name, version=version or pinned, alias=None if (version or pinned) else alias,
                                 db_url=self.db_url)
            except UserError as exc:
                raise ModelRefError(f"{self.served_ref}: {exc}") from None
            model = ResolvedModel(mv.ref, "registry", Path(mv.artifact_path),
                                  source={"registry_name": mv.name, "registry_version": mv.version})
            return Target(mv.ref, f"{mv.name}/{mv.version}", mv.sha256, model)
        model = resolve(self.ref)
        return Target(self.served_ref, model.sha256[:12], model.sha256, model)

    def _load(self, target: Target) -> LoadedModel:
        t0 = time.perf_counter()
        backend = self._factory(target.model)
        log.info("loaded %s (%s) in %.1f s", target.resolved_ref, target.version, time.perf_counter() - t0)
        return LoadedModel(backend, self.served_ref, target.resolved_ref, target.version, target.sha256, target.path)

    # ------------------------------------------------------------ serving side

    def current(self) -> LoadedModel:
        """The model for the next batch (called by the batch worker between batches only)."""
        with self._lock:
            pending, self._pending = self._pending, None
        if pending is not None:
            old, self._current = self._current, pending
            self.swaps += 1
            log.info("now serving %s (was %s)", pending.resolved_ref, old.resolved_ref)
            old.backend.close()
        return self._current

    @property
    def current_model(self) -> LoadedModel:
        """The model answering now (read-only: does not take a pending swap)."""
        return self._current

    def describe(self) -> dict[str, Any]:
        info = self._current.describe()
        info.update(swaps=self.swaps, watching=self.watches_alias, last_error=self.last_error)
        return info

    # ------------------------------------------------------------ watcher

    def check(self) -> bool:
        """Ask the registry where the alias points; load and publish a new target. True if one was published."""
        if not self.watches_alias:
            return False
        with self._check_lock:
            return self._check()

    def _check(self) -> bool:
        try:
            version = self._alias_version()
        except Exception as exc:  # noqa: BLE001 - a registry outage must not stop serving
            self.last_error = f"alias lookup failed: {exc}"
            log.warning("%s: %s", self.served_ref, self.last_error)
            return False
        if version is None:
            if self._watched_version is not None:
                self.last_error = f"alias of {self.served_ref} was removed; still serving {self._current.version}"
                log.warning(self.last_error)
            return False
        if version == self._watched_version or version == self._failed_version:
            return False
        try:
            loaded = self._load(self._target(version))
        except Exception as exc:  # noqa: BLE001 - keep serving the old version
            self._failed_version = version
            self.last_error = f"cannot load version {version}: {exc}"
            log.error("%s: %s", self.served_ref, self.last_error)
            return False
        with self._lock:
            stale, self._pending = self._pending, loaded
        if stale is not None:
            stale.backend.close()
        self._watched_version = version
        self.last_error = None
        return True

    def start(self) -> None:
        if self.watches_alias and self._thread is None and self.poll_interval_s > 0:
            self._stop.clear()
            self._thread = threading.Thread(target=self._watch, name="llmops-serve-watch", daemon=True)
            self._thread.start()

    def _watch(self) -> None:
        while not self._stop.wait(self.poll_interval_s):
            self.check()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def close(self) -> None:
        self.stop()
        with self._lock:
            pending, self._pending = self._pending, None
        if pending is not None:
            pending.backend.close()
        self._current.backend.close()

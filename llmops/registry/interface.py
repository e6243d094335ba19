"""The registry's persistence interface: what the API, CLI and gates rely on."""

from __future__ import annotations

import abc
from pathlib import Path
from typing import Any

from llmops.registry.entities import (
    AliasEvent,
    AliasPolicy,
    EvalAttachment,
    ModelSummary,
    ModelVersion,
    PromotionRecord,
)


class RegistryStore(abc.ABC):
    """What the registry needs from persistence; the CLI, API and gates talk only to this."""

    @abc.abstractmethod
    def register(
        self,
        name: str,
        artifact_dir: str | Path,
        lineage: dict[str, Any] | None = None,
        tags: dict[str, str] | None = None,
        description: str = "",
        actor: str | None = None,
    ) -> ModelVersion: ...

    @abc.abstractmethod
    def get_version(self, name: str, version: int | None = None, alias: str | None = None) -> ModelVersion: ...

    @abc.abstractmethod
    def list_models(self) -> list[ModelSummary]: ...

    @abc.abstractmethod
    def list_versions(self, name: str) -> list[ModelVersion]: ...

    @abc.abstractmethod
    def delete_version(self, name: str, version: int, actor: str | None = None, reason: str = "") -> None: ...

    @abc.abstractmethod
    def set_tags(self, name: str, version: int, tags: dict[str, str | None], actor: str | None = None,
                 reason: str = "") -> ModelVersion: ...

    @abc.abstractmethod
    def attach_eval(
        self, name: str, version: int, results_dir: str | Path, suite: str | None = None, actor: str | None = None
    ) -> EvalAttachment: ...

    @abc.abstractmethod
    def evals(self, name: str, version: int) -> list[EvalAttachment]: ...

    @abc.abstractmethod
    def eval_dir(self, ev: EvalAttachment) -> Path: ...

    @abc.abstractmethod
    def policy(self, model: str, alias: str) -> AliasPolicy | None: ...

    @abc.abstractmethod
    def set_policy(self, model: str, alias: str, protected: bool, gates: dict[str, Any], gates_source: str,
                   actor: str, reason: str = "") -> AliasPolicy: ...

    @abc.abstractmethod
    def alias_version(self, name: str, alias: str) -> int | None: ...

    @abc.abstractmethod
    def set_alias(
        self,
        name: str,
        alias: str,
        version: int | None,
        actor: str | None = None,
        reason: str = "",
        forced: bool = False,
        expect_current: int | None | type[Ellipsis] = ...,
    ) -> AliasEvent: ...

    @abc.abstractmethod
    def alias_history(self, name: str, alias: str | None = None) -> list[AliasEvent]: ...

    @abc.abstractmethod
    def record_promotion(
        self, name: str, version: int, alias: str, decision: str, actor: str, reason: str, report: dict[str, Any],
        gates_file: str | None = None,
    ) -> PromotionRecord: ...

    @abc.abstractmethod
    def promotions(self, name: str) -> list[PromotionRecord]: ...

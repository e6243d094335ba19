"""Typed requests a task asks a model, and one function that has a backend answer them.

As in lm-evaluation-harness (an `Instance` with a request type), a task type never calls
a backend: it builds requests — `GenerateRequest`, `LoglikelihoodRequest`,
`RollingLoglikelihoodRequest` — and `answer` hands them to the backend's matching method
of the narrow interface (`generate`, `loglikelihood`, `loglikelihood_rolling`). Requests
of one kind with the same options (decoding parameters, stride) go to the backend in one
call, in the order the task made them, so batching is exactly what a hand-written loop
would do; answers come back in request order. A new kind of question for a model is a
new request class here and a backend method, never a change to the runner.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from llmops.eval.backends.base import Backend, Generation, GenerationParams, Loglikelihood, Prompt


@dataclass(frozen=True)
class Request:
    """One question for a model. `method` names the backend method that answers it."""

    method: ClassVar[str]

    def group(self) -> Hashable:
        """Requests with equal groups are answered by one backend call."""
        return ()

    @classmethod
    def call(cls, backend: Backend, requests: Sequence[Any]) -> list[Any]:
        """The backend's answers to `requests` (all of this class, one group), in order."""
        raise NotImplementedError


@dataclass(frozen=True)
class GenerateRequest(Request):
    """Continue `prompt` with the decoding `params`; answered by a `Generation`."""

    method: ClassVar[str] = "generate"
    prompt: Prompt
    params: GenerationParams

    def group(self) -> Hashable:
        return self.params

    @classmethod
    def call(cls, backend: Backend, requests: Sequence[GenerateRequest]) -> list[Generation]:
        return backend.generate([r.prompt for r in requests], requests[0].params)


@dataclass(frozen=True)
class LoglikelihoodRequest(Request):
    """log P(`continuation` | `context`); answered by a `Loglikelihood`."""

    method: ClassVar[str] = "loglikelihood"
    context: Prompt
    continuation: str

    @classmethod
    def call(cls, backend: Backend, requests: Sequence[LoglikelihoodRequest]) -> list[Loglikelihood]:
        return backend.loglikelihood([(r.context, r.continuation) for r in requests])


@dataclass(frozen=True)
class RollingLoglikelihoodRequest(Request):
    """log P(`text`) of a whole text, in windows when it is long (`stride`: see `rolling_windows`)."""

    method: ClassVar[str] = "loglikelihood_rolling"
    text: str
    stride: int | None = None

    def group(self) -> Hashable:
        return self.stride

    @classmethod
    def call(cls, backend: Backend, requests: Sequence[RollingLoglikelihoodRequest]) -> list[Loglikelihood]:
        return backend.loglikelihood_rolling([r.text for r in requests], stride=requests[0].stride)


def answer(backend: Backend, requests: Sequence[Request]) -> list[Any]:
    """The backend's answer to every request, in request order: one backend call per
    (request class, group), groups in the order they first appear."""
    groups: dict[tuple[type, Hashable], list[int]] = {}
    for i, request in enumerate(requests):
        groups.setdefault((type(request), request.group()), []).append(i)
    answers: list[Any] = [None] * len(requests)
    for (kind, _), positions in groups.items():
        got = kind.call(backend, [requests[i] for i in positions])
        if len(got) != len(positions):
            raise RuntimeError(f"the {backend.name} backend answered {len(got)} of {len(positions)} "
                               f"`{kind.method}` requests")
        for i, a in zip(positions, got):
            answers[i] = a
    return answers

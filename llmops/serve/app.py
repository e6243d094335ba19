"""Application factory of the model server.

`create_app(model_ref, ...)` loads the model (so a bad reference fails before a port is
bound), and returns a FastAPI app serving

- ``POST /v1/completions``, ``POST /v1/chat/completions`` (OpenAI-compatible; each
  answer carries the feedback ids of its choices), ``GET /v1/models``;
- ``GET /healthz`` (liveness: model, version, batch statistics), ``GET /readyz``
  (readiness: database, batch worker, feedback writer) and ``GET /metrics`` (Prometheus);
- the feedback API and rater page on the same port (``/v1/items``, ``/v1/ratings``,
  ``/v1/comparisons``, ``/``...): the feedback app is mounted as a sub-application, so it
  keeps its own authentication, error format and limits (docs/feedback.md). Key
  management and exports are left out unless ``admin_api=True`` (they belong on the
  feedback service, not on an inference port).

Generation requires an API key (role ``client``, ``service`` or ``admin``), is rate
limited per key and capped per request (`llmops.serve.access`); the Host header must be
one of ``allowed_hosts`` (DNS rebinding), see docs/serving.md.

The batch worker and the registry watcher start with the app (ASGI lifespan) and stop
with it.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from sqlalchemy import text

from llmops.errors import UserError
from llmops.serve import errors
from llmops.serve.access import DEFAULT_BURST, DEFAULT_RATE_PER_S, Access, TokenBuckets
from llmops.serve.batcher import MicroBatcher
from llmops.serve.errors import ServeError
from llmops.serve.generation import GenRequest
from llmops.serve.logprobs import chat_logprobs, completion_logprobs
from llmops.serve.host import ModelHost
from llmops.serve.metrics import ServeMetrics
from llmops.serve.recording import Recorder
from llmops.serve.request_log import RequestLog
from llmops.serve.schemas import (
    AssistantMessage,
    ChatChoice,
    ChatRequest,
    ChatResponse,
    CompletionChoice,
    CompletionRequest,
    CompletionResponse,
    LLMOpsInfo,
    Usage,
)

log = logging.getLogger(__name__)

GENERATION_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "Invalid request (error.param names the field)"},
    401: {"description": "Missing, malformed, unknown or revoked API key"},
    403: {"description": "The key's role may not generate"},
    404: {"description": "Unknown model"},
    413: {"description": "Body too large, more sequences than one batch, or max_tokens above the cap"},
    429: {"description": "Per-key rate limit reached (Retry-After)"},
    503: {"description": "Overloaded, shutting down, or the feedback database is unavailable; retry"},
}


def _backend_factory(backend: str, dtype: str, device: str | None, batch_size: int, seed: int,
                     backend_kwargs: dict[str, Any]):
    from llmops.eval.backends import BACKENDS, load_backend

    if backend not in BACKENDS:
        raise UserError(f"unknown backend `{backend}` (choose from {', '.join(BACKENDS)})")
    if backend == "vllm":
        from llmops.eval.backends.vllm import import_vllm

        import_vllm()  # before any model is resolved or hashed: a missing extra fails at once

    def factory(model):
        return load_backend(backend, model, dtype=dtype, device=device, batch_size=batch_size, seed=seed,
                            **backend_kwargs)

    return factory


class Server:
    """Everything one app holds: the model host, the batcher, the recorder, the metrics."""

    def __init__(self, host: ModelHost, batcher: MicroBatcher, recorder: Recorder, metrics: ServeMetrics,
                 sessions, request_log: RequestLog | None = None, access: Access | None = None) -> None:
        self.host, self.batcher, self.recorder, self.metrics, self.sessions = host, batcher, recorder, metrics, sessions
        self.request_log = request_log
        self.access = access

    def check_model(self, requested: str | None) -> None:
        current = self.host.current_model
        names = {self.host.served_ref, current.resolved_ref, current.version}
        if requested is not None and requested not in names:
            raise ServeError(404, f"the model `{requested}` is not served here; this server serves "
                                  f"`{self.host.served_ref}` (now {current.resolved_ref})", "model", "model_not_found")

    async def generate(self, kind: str, body: CompletionRequest | ChatRequest) -> dict[str, Any]:
        t0 = time.perf_counter()
        status, out = 500, None
        try:
            out = await self._generate(kind, body, t0)
            status = 200
            return out
        except ServeError as exc:
            status = exc.status
            raise
        finally:
            if self.request_log is not None and status != 404:
                self._log(kind, body, status, t0, out)

    def _log(self, kind: str, body: CompletionRequest | ChatRequest, status: int, t0: float,
             out: dict[str, Any] | None) -> None:
        record: dict[str, Any] = {"status": status, "endpoint": kind, "latency_s": round(time.perf_counter() - t0, 4)}
        if isinstance(body, ChatRequest):
            record["messages"] = [m.as_template_message() for m in body.messages]
        else:
            record["prompt"] = body.prompt[0] if len(body.prompt) == 1 else "\n".join(body.prompt)
        if out is not None:
            record.update(model_version=out["llmops"]["model_version"],
                          completion_tokens=out["usage"]["completion_tokens"])
        self.request_log.write(record)

    async def _generate(self, kind: str, body: CompletionRequest | ChatRequest, t0: float) -> dict[str, Any]:
        self.check_model(body.model)
        if isinstance(body, ChatRequest):
            prompts, messages = [], [m.as_template_message() for m in body.messages]
        else:
            prompts, messages = list(body.prompt), None
        if self.access is not None:
            self.access.check_size(len(prompts) or 1, body.n, body.max_tokens)
        if isinstance(body, ChatRequest):
            logprobs, echo = ((body.top_logprobs or 0) if body.logprobs else None), False
        else:
            logprobs, echo = body.logprobs, body.echo
        req = GenRequest(kind=kind, prompts=prompts, messages=messages, n=body.n, max_tokens=body.max_tokens,
                         temperature=body.temperature, top_p=body.top_p, stop=tuple(body.stop or ()), seed=body.seed,
                         logprobs=logprobs, echo=echo)
        result = await asyncio.wrap_future(self.batcher.submit(req))
        request_id = f"{'chatcmpl' if kind == 'chat' else 'cmpl'}-{uuid.uuid4().hex}"
        item_ids, response_ids = await run_in_threadpool(self.recorder.record, req, result, request_id, body.user)
        model = result.model
        completion_tokens = sum(c.completion_tokens for cs in result.choices for c in cs)
        prompt_tokens = sum(result.prompt_tokens)
        common = {
            "id": request_id, "created": int(time.time()), "model": model.resolved_ref,
            "system_fingerprint": model.fingerprint,
            "usage": Usage(prompt_tokens=prompt_tokens, completion_tokens=completion_tokens,
                           total_tokens=prompt_tokens + completion_tokens),
            "llmops": LLMOpsInfo(item_id=item_ids[0], item_ids=item_ids, response_ids=response_ids,
                                 model=model.served_ref, model_version=model.version, model_sha256=model.sha256),
        }
        flat = [(i, c) for i, cs in enumerate(result.choices) for c in cs]
        tok = model.backend.tokenizer
        if kind == "chat":
            choices = [ChatChoice(index=k, message=AssistantMessage(content=c.text), finish_reason=c.finish_reason,
                                  logprobs=chat_logprobs(tok, c), response_id=response_ids[k], item_id=item_ids[i])
                       for k, (i, c) in enumerate(flat)]
            out = ChatResponse(choices=choices, **common)
        else:
            choices = [CompletionChoice(index=k, text=(prompts[i] + c.text) if echo else c.text,
                                        finish_reason=c.finish_reason,
                                        logprobs=completion_logprobs(tok, c, echo, prompts[i], logprobs or 0),
                                        response_id=response_ids[k], item_id=item_ids[i])
                       for k, (i, c) in enumerate(flat)]
            out = CompletionResponse(choices=choices, **common)
        self.metrics.latency.labels(kind).observe(time.perf_counter() - t0)
        return out.model_dump(mode="json")


def _answer(out: dict[str, Any], kind: str, body: CompletionRequest | ChatRequest) -> Response:
    """JSON, or server-sent events for `stream: true` (the answer is complete and recorded either way)."""
    if not body.stream:
        return JSONResponse(out)
    from fastapi.responses import StreamingResponse

    from llmops.serve.streaming import sse_chunks

    include_usage = bool(body.stream_options and body.stream_options.include_usage)
    return StreamingResponse(sse_chunks(out, kind, include_usage), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache"})


class _CountRequests:
    """Pure-ASGI counter of the generation endpoints' answers by status (including 400s from validation)."""

    PATHS = {"/v1/completions": "completion", "/v1/chat/completions": "chat"}

    def __init__(self, app, metrics: ServeMetrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope, receive, send) -> None:
        endpoint = self.PATHS.get(scope.get("path", "")) if scope["type"] == "http" else None
        if endpoint is None:
            await self.app(scope, receive, send)
            return
        status = 500

        async def send_wrapper(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            self.metrics.requests.labels(endpoint, str(status)).inc()


def create_app(
    model_ref: str,
    db_url: str | None = None,
    backend: str = "hf",
    max_batch_size: int = 8,
    max_wait_ms: float = 10.0,
    poll_interval_s: float = 5.0,
    *,
    dtype: str = "float32",
    device: str | None = None,
    default_max_tokens: int = 256,
    max_queue: int = 1024,
    seed: int = 0,
    torch_threads: int | None = None,
    request_log: str | None = None,
    feedback_api: bool = True,
    migrate: bool = False,
    backend_kwargs: dict[str, Any] | None = None,
    allowed_hosts: tuple[str, ...] | list[str] | None = None,
    rate_limit_per_s: float | None = DEFAULT_RATE_PER_S,
    rate_burst: int = DEFAULT_BURST,
    max_tokens_cap: int = 4096,
    admin_api: bool = False,
    rater_view: str = "blind",
    feedback_project: str | None = None,
) -> FastAPI:
    """Load `model_ref` and build the app (see the module docstring).

    `poll_interval_s` is how often a ``registry:NAME@ALIAS`` reference is re-resolved
    (0 disables the watcher; `app.state.server.host.check()` still swaps on demand).
    `torch_threads` sets the intra-op threads of the batch worker (default: torch's).
    `request_log` appends one JSONL line per generation request (`llmops.serve.request_log`).
    The schema must be current unless `migrate` (`llmops.db.migrate.prepare`).
    `allowed_hosts` defaults to the loopback names (None in the list sense: pass ``["*"]``
    to accept any Host); `rate_limit_per_s=None` disables the per-key limit. `feedback_project`
    puts every recorded item into that rating project (it must exist); by default routing rules decide.
    """
    from functools import partial

    from starlette.middleware.trustedhost import TrustedHostMiddleware

    from llmops.db import session_factory
    from llmops.db.engine import read_only_session
    from llmops.db.migrate import prepare
    from llmops.feedback.api.app import DEFAULT_ALLOWED_HOSTS
    from llmops.feedback.api.request_id import RequestId
    from llmops.feedback.auth import KeyVerifier
    from llmops.settings import database_url

    url = database_url(db_url)
    prepare(url, migrate)
    if max_tokens_cap < 1:
        raise UserError("max_tokens_cap must be at least 1")
    recorder = Recorder(url, project=feedback_project)  # before loading the model: an unknown project fails fast
    factory = _backend_factory(backend, dtype, device, max_batch_size, seed, backend_kwargs or {})
    host = ModelHost(model_ref, factory, url, poll_interval_s)
    metrics = ServeMetrics()
    batcher = MicroBatcher(host, metrics, max_batch_size=max_batch_size, max_wait_ms=max_wait_ms,
                           default_max_tokens=default_max_tokens, max_queue=max_queue, seed=seed,
                           torch_threads=torch_threads)
    log_file = RequestLog(request_log) if request_log else None
    feedback = None
    if feedback_api:
        from llmops.feedback.api.app import create_app as feedback_app

        # The outer app checks Host and assigns request ids; the feedback app keeps its own auth.
        feedback = feedback_app(url, allowed_hosts=None, admin_api=admin_api, rater_view=rater_view)
    verifier = feedback.state.verifier if feedback is not None else KeyVerifier(partial(read_only_session, url))
    access = Access(verifier, TokenBuckets(rate_limit_per_s, rate_burst) if rate_limit_per_s else None,
                    max_sequences=max_batch_size, max_tokens_cap=max_tokens_cap)
    server = Server(host, batcher, recorder, metrics, session_factory(url), log_file, access)

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        batcher.start()
        host.start()
        try:
            if feedback is None:
                yield
            else:  # a mounted app's lifespan does not run by itself (its writer drains on shutdown)
                async with feedback.router.lifespan_context(feedback):
                    yield
        finally:
            host.stop()
            await run_in_threadpool(batcher.stop)
            host.close()
            if log_file is not None:
                log_file.close()

    app = FastAPI(title="llmops serve", version="1", lifespan=lifespan,
                  description=f"OpenAI-compatible generation from `{model_ref}`, recorded for human feedback.")
    app.state.server = server
    errors.install(app)

    @app.post("/v1/completions", response_model=CompletionResponse, responses=GENERATION_ERRORS,
              summary="Text completion (OpenAI-compatible)")
    async def completions(body: CompletionRequest, request: Request) -> Response:
        await access.principal(request)
        return _answer(await server.generate("completion", body), "completion", body)

    @app.post("/v1/chat/completions", response_model=ChatResponse, responses=GENERATION_ERRORS,
              summary="Chat completion with the model's chat template (OpenAI-compatible)")
    async def chat_completions(body: ChatRequest, request: Request) -> Response:
        await access.principal(request)
        return _answer(await server.generate("chat", body), "chat", body)

    @app.get("/v1/models", summary="The served model and the version answering now")
    def models() -> dict[str, Any]:
        info = host.describe()
        return {"object": "list", "data": [{"id": host.served_ref, "object": "model",
                                            "created": int(info["loaded_at"]), "owned_by": "llmops", "llmops": info}]}

    @app.get("/healthz", summary="Liveness: model, version, batching statistics")
    def healthz() -> JSONResponse:
        return JSONResponse({"status": "ok", "model": host.describe(), "batcher": dict(batcher.stats)})

    @app.get("/readyz", summary="Readiness: database reachable, batch worker and feedback writer alive")
    def readyz() -> JSONResponse:
        problems = []
        try:
            with server.sessions() as s:
                s.execute(text("SELECT 1"))
        except Exception as exc:  # noqa: BLE001 - the detail goes to the log, not to the client
            log.error("readiness: database unreachable: %s", type(exc).__name__)
            problems.append("database unreachable")
        if not batcher.alive():
            problems.append("batch worker dead")
        if feedback is not None:
            writer = feedback.state.committer.health()
            if not writer["alive"] or writer["hung"]:
                problems.append("feedback writer dead or hung")
        body = {"status": "ready" if not problems else "not ready", "problems": problems}
        return JSONResponse(body, status_code=503 if problems else 200)

    @app.get("/metrics", summary="Prometheus metrics", response_class=Response)
    def prometheus() -> Response:
        payload, content_type = metrics.render()
        return Response(payload, media_type=content_type)

    if feedback is not None:
        app.mount("/", feedback)  # after our routes: ours match first

    from llmops.feedback.api.limits import BodySizeLimit

    app.add_middleware(BodySizeLimit)
    app.add_middleware(_CountRequests, metrics=metrics)
    hosts = list(DEFAULT_ALLOWED_HOSTS if allowed_hosts is None else allowed_hosts)
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=hosts)
    app.add_middleware(RequestId)
    return app

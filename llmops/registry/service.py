"""The registry over HTTP, so several machines share one registry (`llmops registry serve`).

Every endpoint needs ``Authorization: Bearer <API key>``; the key is checked by the
injected ``authenticate(token) -> Principal`` (the CLI wires the feedback store's keys)
and the principal's role must allow the endpoint's action (`governance.PERMISSIONS`):
nothing is open by default. Errors are JSON ``{"error": code, "detail": message}``: bad
input is 4xx (400 invalid, 401, 403, 404 unknown, 409 refused promotion), never 5xx.

``GET .../versions/{ref}/artifact`` hands the files out (a tar, with the sha256 in a
header) so a machine with only the URL and a key can resolve ``registry:`` references.

Registering by upload: ``POST /v1/models/{name}/versions`` with a tar (optionally gzip)
body holding ``artifact/`` (the model folder) and optionally ``registration.json``
(``{"lineage": {...}, "tags": {...}, "description": ""}``); attaching an evaluation:
``POST /v1/models/{name}/versions/{version}/evals`` with ``results/``. The archive is streamed to
disk (``max_upload_bytes``) and unpacked with tarfile's ``data`` filter (no links out,
no absolute paths, no devices) before the registry copies and hashes it as usual.
"""

from __future__ import annotations

import json
import os
import shutil
import tarfile
import tempfile
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, PlainTextResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool

from llmops.errors import UserError
from llmops.registry import governance
from llmops.registry.api import normalise_lineage
from llmops.registry.artifacts import ArtifactError
from llmops.registry.card import to_html
from llmops.registry.entities import PromotionRefused, RegistryNotFound
from llmops.registry.gates import Comparator
from llmops.registry.governance import Authenticate, Forbidden, Principal, Unauthorized
from llmops.registry.interface import RegistryStore
from llmops.registry.lineage import export

DEFAULT_MAX_UPLOAD = 64 << 30


class UploadTooLarge(UserError):
    """A request body past `max_upload_bytes` (HTTP 413)."""


class PromoteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    alias: str
    reason: str = ""
    force: bool = False


class AliasIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: int | None = Field(description="Target version; null removes the alias.")
    reason: str = ""
    force: bool = False


def _error(status: int, code: str, detail: str, extra: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": code, "detail": detail, **(extra or {})}, status_code=status)


def _version_of(store: RegistryStore, name: str, ref: str) -> int:
    """A path segment that is a version number or ``@alias``."""
    if ref.isdigit():
        return int(ref)
    return store.get_version(name, alias=ref.lstrip("@")).version


def _unpack(body: Path, dest: Path, folder: str = "artifact") -> tuple[Path, dict[str, Any]]:
    try:
        with tarfile.open(body, "r:*") as tar:
            tar.extractall(dest, filter="data")
    except (tarfile.TarError, OSError) as exc:
        raise UserError(f"upload is not a readable tar archive: {exc}") from None
    artifact = dest / folder
    if not artifact.is_dir():
        raise UserError(f"upload must hold a `{folder}/` folder (and optionally registration.json)")
    meta: dict[str, Any] = {}
    if (dest / "registration.json").is_file():
        try:
            meta = json.loads((dest / "registration.json").read_text())
        except ValueError as exc:
            raise UserError(f"registration.json: not valid JSON ({exc})") from None
        unknown = set(meta) - {"lineage", "tags", "description"}
        if unknown or not isinstance(meta, dict):
            raise UserError(f"registration.json: unknown key(s) {sorted(unknown)} (lineage, tags, description)")
    return artifact, meta


def create_app(
    store: RegistryStore,
    authenticate: Authenticate,
    compare: Comparator | None = None,
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD,
) -> FastAPI:
    """The registry API over `store`; `compare` is what promotion gates test with (see `gates`)."""
    app = FastAPI(title="llmops registry", version="1",
                  description="Model versions, cards, lineage, gated promotion; API-key auth.")

    @app.exception_handler(Unauthorized)
    async def _401(_: Request, exc: Unauthorized):
        return _error(401, "unauthenticated", str(exc))

    @app.exception_handler(Forbidden)
    async def _403(_: Request, exc: Forbidden):
        return _error(403, "forbidden", str(exc))

    @app.exception_handler(RegistryNotFound)
    async def _404(_: Request, exc: RegistryNotFound):
        return _error(404, "not_found", str(exc))

    @app.exception_handler(PromotionRefused)
    async def _409(_: Request, exc: PromotionRefused):
        return _error(409, "promotion_refused", str(exc), {"report": exc.report})

    @app.exception_handler(UserError)
    async def _400(_: Request, exc: UserError):
        return _error(400, "invalid", str(exc))

    def principal(request: Request) -> Principal:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized("send `Authorization: Bearer <API key>`")
        return authenticate(token.strip())

    def reader(who: Principal = Depends(principal)) -> Principal:
        return governance.authorize(who, governance.READ)

    @app.get("/v1/models")
    def list_models(_: Principal = Depends(reader)):
        return [m.to_dict() for m in store.list_models()]

    @app.get("/v1/models/{name}/versions")
    def list_versions(name: str, _: Principal = Depends(reader)):
        return [v.to_dict() for v in store.list_versions(name)]

    @app.get("/v1/models/{name}/versions/{ref}")
    def show(name: str, ref: str, _: Principal = Depends(reader)):
        mv = store.get_version(name, _version_of(store, name, ref))
        return mv.to_dict() | {"evals": [e.to_dict() for e in store.evals(name, mv.version)]}

    @app.get("/v1/models/{name}/versions/{ref}/card")
    def card(name: str, ref: str, format: str = "markdown", _: Principal = Depends(reader)):
        version = _version_of(store, name, ref)
        text = store.card(name, version)
        if format == "html":
            return HTMLResponse(to_html(text, f"{name}/{version} model card"))
        return PlainTextResponse(text, media_type="text/markdown")

    @app.get("/v1/models/{name}/versions/{ref}/artifact")
    def artifact(name: str, ref: str, _: Principal = Depends(reader)):
        """The version's files as an uncompressed tar (``artifact/...``); header X-Llmops-Sha256."""
        mv = store.get_version(name, _version_of(store, name, ref))
        folder = store.artifacts.materialize(mv.artifact_uri, mv.sha256)
        fd, tmp = tempfile.mkstemp(prefix="llmops-artifact-", suffix=".tar")
        os.close(fd)
        with tarfile.open(tmp, "w") as tar:
            tar.add(folder, arcname="artifact")
        return FileResponse(tmp, media_type="application/x-tar", filename=f"{name}-{mv.version}.tar",
                            headers={"X-Llmops-Sha256": mv.sha256, "X-Llmops-Version": str(mv.version)},
                            background=BackgroundTask(os.unlink, tmp))

    @app.get("/v1/models/{name}/lineage")
    def lineage(name: str, format: str = "mermaid", _: Principal = Depends(reader)):
        if format not in ("mermaid", "dot", "html"):
            raise UserError("format must be mermaid, dot or html")
        text = export(store.list_versions(name), format, title=f"{name} lineage")
        return HTMLResponse(text) if format == "html" else PlainTextResponse(text)

    @app.get("/v1/models/{name}/aliases")
    def aliases(name: str, _: Principal = Depends(reader)):
        return [e.to_dict() for e in store.alias_history(name)]

    async def receive(request: Request, work: Path, folder: str) -> tuple[Path, dict[str, Any]]:
        """Stream the request body to disk (bounded) and unpack it."""
        body, total = work / "upload.tar", 0
        with body.open("wb") as fh:
            async for chunk in request.stream():
                total += len(chunk)
                if total > max_upload_bytes:
                    raise UploadTooLarge(f"upload exceeds {max_upload_bytes} bytes")
                fh.write(chunk)
        return await run_in_threadpool(_unpack, body, work / "x", folder)

    @app.exception_handler(UploadTooLarge)
    async def _413(_: Request, exc: UploadTooLarge):
        return _error(413, "too_large", str(exc))

    @app.post("/v1/models/{name}/versions", status_code=201)
    async def upload(name: str, request: Request, who: Principal = Depends(principal)):
        governance.authorize(who, governance.REGISTER)
        work = Path(tempfile.mkdtemp(prefix="llmops-upload-"))
        try:
            artifact, meta = await receive(request, work, "artifact")
            tags = {str(k): str(v) for k, v in (meta.get("tags") or {}).items()}
            mv = await run_in_threadpool(store.register, name, artifact,
                                         normalise_lineage(meta.get("lineage"), artifact), tags,
                                         meta.get("description", ""), who.id)
            return mv.to_dict()
        except ArtifactError as exc:
            return _error(400, "invalid", str(exc))
        finally:
            shutil.rmtree(work, ignore_errors=True)

    @app.post("/v1/models/{name}/versions/{version}/evals", status_code=201)
    async def attach_eval(name: str, version: int, request: Request, suite: str | None = None,
                          who: Principal = Depends(principal)):
        """Body: a tar(.gz) holding ``results/`` (results.json + samples.jsonl of this version)."""
        governance.authorize(who, governance.EVALS)
        work = Path(tempfile.mkdtemp(prefix="llmops-upload-"))
        try:
            results, _ = await receive(request, work, "results")
            ev = await run_in_threadpool(store.attach_eval, name, version, results, suite, who.id)
            return ev.to_dict()
        finally:
            shutil.rmtree(work, ignore_errors=True)

    @app.post("/v1/models/{name}/versions/{version}/promote")
    def promote(name: str, version: int, body: PromoteIn, who: Principal = Depends(principal)):
        rec = governance.promote(store, who, name, version, body.alias, None, reason=body.reason, force=body.force,
                                 compare=compare)
        return rec.to_dict()

    @app.put("/v1/models/{name}/aliases/{alias}")
    def move_alias(name: str, alias: str, body: AliasIn, who: Principal = Depends(principal)):
        ev = governance.move_alias(store, who, name, alias, body.version, reason=body.reason, force=body.force)
        return ev.to_dict()

    return app

"""A client of `llmops registry serve` (what ``--registry-url`` / ``$LLMOPS_REGISTRY_URL`` selects)."""

from __future__ import annotations

import json
import tarfile
import tempfile
from pathlib import Path
from typing import Any

from llmops.errors import UserError
from llmops.registry.artifacts import check_source
from llmops.registry.entities import PromotionRefused


class RegistryClient:
    """Thin HTTP client; every call sends the API key as a bearer token."""

    @classmethod
    def from_env(cls) -> RegistryClient | None:
        """A client when $LLMOPS_REGISTRY_URL is set (key: $LLMOPS_API_KEY), else None."""
        import os

        url = os.environ.get("LLMOPS_REGISTRY_URL", "").strip()
        return cls(url, os.environ.get("LLMOPS_API_KEY", "").strip()) if url else None

    def __init__(self, url: str, token: str, timeout: float = 600.0) -> None:
        import httpx

        if not token:
            raise UserError("the registry server needs an API key: set LLMOPS_API_KEY")
        self.http = httpx.Client(base_url=url.rstrip("/"), headers={"Authorization": f"Bearer {token}"},
                                 timeout=timeout)

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        import httpx

        try:
            resp = self.http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise UserError(f"registry server {self.http.base_url}: {exc}") from None
        if resp.status_code >= 400:
            try:
                body = resp.json()
            except ValueError:
                body = {"detail": resp.text[:500]}
            if resp.status_code == 409 and "report" in body:
                raise PromotionRefused(body["detail"], body["report"])
            raise UserError(f"registry server: {body.get('detail', body)} (HTTP {resp.status_code})")
        return resp.json() if resp.headers.get("content-type", "").startswith("application/json") else resp.text

    def list_models(self) -> list[dict]:
        return self._call("GET", "/v1/models")

    def list_versions(self, name: str) -> list[dict]:
        return self._call("GET", f"/v1/models/{name}/versions")

    def show(self, name: str, ref: str) -> dict:
        return self._call("GET", f"/v1/models/{name}/versions/{ref}")

    def card(self, name: str, ref: str, html: bool = False) -> str:
        return self._call("GET", f"/v1/models/{name}/versions/{ref}/card", params={"format": "html" if html else "markdown"})

    def lineage(self, name: str, fmt: str) -> str:
        return self._call("GET", f"/v1/models/{name}/lineage", params={"format": fmt})

    def alias_history(self, name: str) -> list[dict]:
        return self._call("GET", f"/v1/models/{name}/aliases")

    def _upload(self, path: str, folder: str, src: Path, meta: dict | None = None, params: dict | None = None) -> dict:
        """POST `src` as ``folder/`` (+ registration.json) in a tar.gz streamed from a temp file."""
        with tempfile.TemporaryDirectory(prefix="llmops-upload-") as tmp:
            archive = Path(tmp) / "upload.tar.gz"
            with tarfile.open(archive, "w:gz", dereference=True) as tar:
                tar.add(src, arcname=folder, filter=lambda ti: None if ti.name.split("/")[-1].startswith(".") else ti)
                if meta is not None:
                    (Path(tmp) / "registration.json").write_text(json.dumps(meta))
                    tar.add(Path(tmp) / "registration.json", arcname="registration.json")
            with archive.open("rb") as fh:
                return self._call("POST", path, content=fh, params=params,
                                  headers={"Content-Type": "application/gzip"})

    def register(self, name: str, artifact_dir: str | Path, lineage: dict | None = None,
                 tags: dict[str, str] | None = None, description: str = "") -> dict:
        """Upload a model folder (``artifact/`` + ``registration.json``)."""
        real = check_source(Path(artifact_dir).expanduser())
        meta = {"lineage": lineage or {}, "tags": tags or {}, "description": description}
        return self._upload(f"/v1/models/{name}/versions", "artifact", real, meta)

    def attach_eval(self, name: str, version: int, results_dir: str | Path, suite: str | None = None) -> dict:
        src = Path(results_dir).expanduser()
        if not (src / "results.json").is_file():
            raise UserError(f"{src}: no results.json (expected an evaluation result directory)")
        return self._upload(f"/v1/models/{name}/versions/{version}/evals", "results", src,
                            params={"suite": suite} if suite else None)

    def download(self, name: str, ref: str) -> Path:
        """A local, read-only, hash-verified copy of a version (cached under $LLMOPS_HOME)."""
        import hashlib
        import os
        import shutil

        from llmops.models.hashing import tree_digest
        from llmops.registry.artifacts import make_read_only
        from llmops.settings import llmops_home

        info = self.show(name, ref)
        host = hashlib.sha256(str(self.http.base_url).encode()).hexdigest()[:16]
        final = llmops_home() / "registry" / "remote" / host / name / str(info["version"])
        if final.is_dir():
            return final
        final.parent.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=".download-", dir=final.parent))
        try:
            archive = work / "artifact.tar"
            with self.http.stream("GET", f"/v1/models/{name}/versions/{info['version']}/artifact") as resp:
                if resp.status_code >= 400:
                    raise UserError(f"registry server: cannot download {name}/{info['version']} "
                                    f"(HTTP {resp.status_code})")
                with archive.open("wb") as fh:
                    for chunk in resp.iter_bytes(1 << 20):
                        fh.write(chunk)
            with tarfile.open(archive) as tar:
                tar.extractall(work / "x", filter="data")
            got, _ = tree_digest(work / "x" / "artifact")
            if got != info["sha256"]:
                raise UserError(f"download of {name}/{info['version']} has sha256 {got[:12]}…, the registry "
                                f"recorded {info['sha256'][:12]}…: refusing it")
            make_read_only(work / "x" / "artifact")
            try:
                os.replace(work / "x" / "artifact", final)
            except OSError:
                if not final.is_dir():
                    raise
        finally:
            for dirpath, _, _ in os.walk(work):
                os.chmod(dirpath, 0o700)
            shutil.rmtree(work, ignore_errors=True)
        return final

    def promote(self, name: str, version: int, alias: str, reason: str = "", force: bool = False) -> dict:
        return self._call("POST", f"/v1/models/{name}/versions/{version}/promote",
                          json={"alias": alias, "reason": reason, "force": force})

    def set_alias(self, name: str, alias: str, version: int | None, reason: str = "", force: bool = False) -> dict:
        return self._call("PUT", f"/v1/models/{name}/aliases/{alias}",
                          json={"version": version, "reason": reason, "force": force})

"""`--backend openai` against vLLM's own OpenAI-compatible server: the same greedy outputs as
the hf backend, and multiple choice through its echoed prompt log-probabilities.

Runs where vLLM is importable (`make test-vllm`, `.venv-vllm`); elsewhere it skips. The
server is started here on a free loopback port and stopped at the end.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def vllm_server(tmp_path_factory):
    pytest.importorskip("vllm", reason="vLLM not installed (make test-vllm builds an environment with it)")
    import httpx

    from llmops.models.refs import resolve

    path = resolve("builtin:tiny").path
    port = _free_port()
    env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": os.environ.get("VLLM_CPU_KVCACHE_SPACE", "1"), "HF_HUB_OFFLINE": "1"}
    log = tmp_path_factory.mktemp("vllm") / "server.log"
    with log.open("w") as fh:
        proc = subprocess.Popen(
            [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", str(path), "--served-model-name",
             "tiny", "--dtype", "float32", "--max-model-len", "1024", "--enforce-eager", "--host", "127.0.0.1",
             "--port", str(port), "--seed", "0"],
            env=env, stdout=fh, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                pytest.fail(f"vLLM server exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(2)
        else:
            pytest.fail(f"vLLM server not healthy after 600 s:\n{log.read_text()[-3000:]}")
        yield f"{url}/v1"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()


def _outputs(out: Path) -> list[str]:
    return [json.loads(x)["output"] for x in (out / "samples.jsonl").read_text().splitlines()]


@pytest.mark.timeout(1200)
def test_generation_and_multiple_choice_through_vllms_server_match_hf(vllm_server, tmp_path):
    from llmops.eval.api import evaluate

    gen = REPO / "eval" / "docstring_summary.yaml"
    evaluate("builtin:tiny", gen, tmp_path / "hf", use_cache=False, limit=8)
    evaluate("tiny", gen, tmp_path / "api", backend="openai", base_url=vllm_server, limit=8)
    assert _outputs(tmp_path / "api") == _outputs(tmp_path / "hf")
    mc = REPO / "eval" / "multiple_choice.yaml"
    hf = evaluate("builtin:tiny", mc, tmp_path / "hf-mc", use_cache=False, limit=8)
    api = evaluate("tiny", mc, tmp_path / "api-mc", backend="openai", base_url=vllm_server, limit=8)
    assert api["metrics"]["accuracy"]["score"] == hf["metrics"]["accuracy"]["score"]


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-v"]))

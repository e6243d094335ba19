"""The vLLM backend sized to the run: `max_model_len` from the window the requests need, engine
options passed through, and an answer that cannot fit the window is an error. Runs in
`make test-vllm` (`.venv-vllm`); elsewhere it skips."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(1200)
def test_engine_window_options_and_overflow(tmp_path):
    pytest.importorskip("vllm", reason="vLLM not installed (make test-vllm builds an environment with it)")
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    from llmops.eval.api import evaluate
    from llmops.eval.backends import GenerationParams, Prompt

    res = evaluate("builtin:tiny", REPO / "eval" / "docstring_summary.yaml", tmp_path / "out", backend="vllm",
                   use_cache=False, limit=3, engine_options={"enforce_eager": True})
    engine = res["provenance"]["engine"]
    assert engine["enforce_eager"] is True and 50 < engine["max_model_len"] < 1024  # not the model's 1024
    from llmops.eval.backends.vllm import VLLMBackend

    backend = VLLMBackend("builtin:tiny", dtype="float32", max_model_len=96)
    try:
        config = backend.llm.llm_engine.model_config
        assert config.max_model_len == 96 and backend.max_length == 94
        with pytest.raises(ValueError, match="leaves no room"):
            backend.generate([Prompt("hello")], GenerationParams(max_new_tokens=200))
    finally:
        backend.close()


if __name__ == "__main__":
    import sys

    sys.exit(pytest.main([__file__, "-v"]))

"""`llmops bench` speed figures: an uncached pass per model in its own process (warm-up,
fixed-length decoding, p50/p95 latency at batch 1 and batched, time to first token, peak
memory), shown as a table and plots; quality timings read from the cache are marked."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from llmops.cli.main import main

pytestmark = pytest.mark.slow


def test_bench_speed_pass_is_uncached_and_per_process(random_llama: Path, tmp_path: Path, monkeypatch) -> None:
    import torch
    from safetensors.torch import load_file, save_file

    monkeypatch.setenv("LLMOPS_HOME", str(tmp_path / "home"))
    other = shutil.copytree(random_llama, tmp_path / "other")
    weights = load_file(str(other / "model.safetensors"))
    weights = {k: v + 0.05 * torch.randn_like(v) if v.ndim == 2 else v for k, v in weights.items()}
    save_file(weights, str(other / "model.safetensors"), metadata={"format": "pt"})
    data = tmp_path / "d.jsonl"
    data.write_text("".join(json.dumps({"q": f"Return the number {i}", "a": "of items."}) + "\n" for i in range(6)))
    suite = tmp_path / "s.yaml"
    suite.write_text(f"name: speedy\ndataset: {{path: {data}}}\nprompt: {{template: '{{q}}'}}\nreferences: a\n"
                     "generation: {max_new_tokens: 4}\nmetrics: [bleu, chrf]\nbootstrap: {n_resamples: 50}\n")
    args = ["bench", str(random_llama), str(other), "--suite", str(suite), "--speed-prompts", "4",
            "--speed-new-tokens", "3", "--speed-batch-size", "2", "--speed-repeats", "1", "--device", "cpu"]
    assert main([*args, "--out", str(tmp_path / "b1"), "--no-speed"]) == 0
    assert main([*args, "--out", str(tmp_path / "b2")]) == 0  # quality now from the cache, speed measured anyway

    first = json.loads((tmp_path / "b1" / "bench.json").read_text())
    second = json.loads((tmp_path / "b2" / "bench.json").read_text())
    assert "speed" not in first
    pids = {s["pid"] for s in second["speed"]}
    assert len(pids) == 2 and os.getpid() not in pids  # one fresh process per model
    for s in second["speed"]:
        assert s["cached"] is False and s["fixed_length"] and s["new_tokens"] == 3
        for mode in ("batch1", "batched"):
            assert 0 < s[mode]["latency_p50_s"] <= s[mode]["latency_p95_s"] and s[mode]["tokens_per_s"] > 0
            assert 0 < s[mode]["ttft_p50_s"]
        assert s["batch1"]["n_requests"] == 4 and s["peak_rss_mb"] > 0
    cmp = second["suites"]["speedy"][1]["comparison"]
    assert {"p_holm", "delta_ci95", "direction"} <= cmp["bleu"].keys()
    assert second["suites"]["speedy"][0]["results"]["timings"]["cached"] is True
    md = (tmp_path / "b2" / "report.md").read_text()
    assert "## Speed (uncached)" in md and "TTFT s @1" in md
    assert md.count("(cached)") > 1 and (tmp_path / "b1" / "report.md").read_text().count("(cached)") == 1  # + legend
    html = (tmp_path / "b2" / "report.html").read_text()
    assert "alt='speed plot'" in html and html.count("data:image/png;base64,") >= 2

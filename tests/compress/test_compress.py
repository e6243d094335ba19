"""`llmops compress`: torchao quantization and pruning of builtin:tiny, saved for plain transformers,
registered with lineage, benchmarked against the parent, and the distill → compress → gate pipeline."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from llmops.cli.main import main

pytest.importorskip("torchao")




def _json_out(text: str) -> dict:
    """The JSON document a command printed (libraries such as DeepSpeed may print a line before it)."""
    start = next(i for i, line in enumerate(text.splitlines(keepends=True)) if line.startswith("{"))
    return json.JSONDecoder().raw_decode("".join(text.splitlines(keepends=True)[start:]))[0]


def _plain_load(*paths) -> dict | list[dict]:
    """Load each path with transformers alone in one fresh interpreter (no llmops import) and run one forward."""
    code = (
        "import json, sys, torch\nfrom transformers import AutoModelForCausalLM\n"
        "for path in sys.argv[1:]:\n"
        "    m = AutoModelForCausalLM.from_pretrained(path)\n"
        "    w = m.model.layers[0].mlp.gate_proj.weight\n"
        "    out = m(torch.tensor([[5, 6, 7]])).logits\n"
        "    print(json.dumps({'weight_type': type(w).__name__, 'shape': list(w.shape), 'finite': bool(out.isfinite().all()),"
        " 'logits': out[0, -1, :5].tolist()}))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code, *map(str, paths)], capture_output=True, text=True, timeout=300,
                          env={"HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    loaded = [json.loads(line) for line in proc.stdout.strip().splitlines()[-len(paths):]]
    assert len(loaded) == len(paths)
    return loaded[0] if len(paths) == 1 else loaded


def test_int8_weight_saved_for_plain_transformers_and_registered_with_lineage(tmp_path, capsys):
    db = f"sqlite:///{tmp_path / 'r.db'}"
    out = tmp_path / "int8"
    assert main(["compress", "builtin:tiny", "--method", "int8-weight", "--out", str(out), "--register", "tiny-c",
                 "--db", db]) == 0
    summary = _json_out(capsys.readouterr().out)
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["quantization_config"]["quant_method"] == "torchao"
    assert summary["weights_bytes"]["ratio"] < 0.6  # the linear layers are int8 (embeddings stay fp32)
    loaded = _plain_load(out)
    assert loaded["weight_type"] == "Int8Tensor" and loaded["finite"]
    from llmops.registry import api

    mv = api.get_version("tiny-c", 1, db_url=db)
    assert mv.lineage["compression"]["method"] == "int8-weight" and mv.lineage["base_model_ref"] == "builtin:tiny"
    assert mv.tags["compression"] == "int8-weight" and summary["registered"] == "registry:tiny-c/1"


def test_int8_dynamic_and_intx4_quantize_on_cpu(tmp_path):
    from llmops.compress.api import compress

    r8 = compress("builtin:tiny", "int8-dynamic", tmp_path / "d8")
    r4 = compress("builtin:tiny", "intx4-weight", tmp_path / "x4", {"group_size": 64})
    assert r8.record["settings"] == {} and r4.record["settings"] == {"group_size": 64}
    x4, d8 = _plain_load(tmp_path / "x4", tmp_path / "d8")
    assert x4["weight_type"] == "IntxUnpackedToInt8Tensor" and d8["finite"]


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without CUDA")
def test_gpu_only_method_refuses_clearly_on_cpu(tmp_path, capsys):
    assert main(["compress", "builtin:tiny", "--method", "int4-weight", "--out", str(tmp_path / "i4")]) == 2
    err = capsys.readouterr().err
    assert "int4-weight needs a CUDA GPU" in err and "intx4-weight" in err
    assert not (tmp_path / "i4").exists()


def test_bad_setting_names_the_choices(tmp_path, capsys):
    assert main(["compress", "builtin:tiny", "--method", "prune-magnitude", "-s", "fraction=0.5",
                 "--out", str(tmp_path / "x")]) == 2
    assert "has no setting `fraction` (settings: sparsity)" in capsys.readouterr().err


def test_structured_pruning_shrinks_the_mlp_and_loads(tmp_path):
    from llmops.compress.api import compress

    r = compress("builtin:tiny", "prune-structured", tmp_path / "s", {"fraction": 0.5})
    assert r.record["details"]["intermediate_size_after"] == 192
    assert json.loads((tmp_path / "s" / "config.json").read_text())["intermediate_size"] == 192
    assert _plain_load(tmp_path / "s")["shape"] == [192, 128]
    assert r.record["weights_bytes"]["ratio"] < 0.8


def test_magnitude_pruning_keeps_its_sparsity_through_recovery(tmp_path):
    from transformers import AutoModelForCausalLM

    from llmops.compress.api import compress
    from llmops.compress.prune import sparsity_of

    r = compress("builtin:tiny", "prune-magnitude", tmp_path / "m", {"sparsity": 0.5}, recover_steps=2)
    assert r.record["details"]["measured_sparsity"] == pytest.approx(0.5, abs=0.01)
    assert r.record["recovery"]["steps"] == 2 and r.record["recovery"]["run_id"]
    assert sparsity_of(AutoModelForCausalLM.from_pretrained(str(tmp_path / "m"))) == pytest.approx(0.5, abs=0.01)


def _perplexity_suite(tmp_path):
    items = tmp_path / "items.jsonl"
    items.write_text("".join(json.dumps({"text": f"Return the value of key {i} from the mapping, or the default."}) + "\n"
                             for i in range(8)))
    suite = tmp_path / "ppl.yaml"
    suite.write_text("name: ppl\ntask: perplexity\ndataset:\n  path: items.jsonl\ntext: text\nmetrics: [perplexity]\n"
                     "generation:\n  batch_size: 8\nseed: 0\n")
    return suite


def test_bench_against_parent_reports_size_memory_and_paired_test(tmp_path, capsys):
    suite = _perplexity_suite(tmp_path)
    assert main(["compress", "builtin:tiny", "--method", "prune-structured", "--out", str(tmp_path / "s"),
                 "--bench-suite", str(suite), "--bench-no-speed"]) == 0  # the speed pass has tests of its own
    out = capsys.readouterr().out
    assert "weights MB" in out and "model RSS MB" in out and "Δ perplexity vs first" in out
    bench = json.loads((tmp_path / "s-bench" / "bench.json").read_text())
    parent, child = bench["suites"]["ppl"]
    assert child["footprint"]["weights_mb"] < parent["footprint"]["weights_mb"]
    assert child["comparison"]["perplexity"]["test"]


@pytest.mark.slow
def test_pipeline_distills_compresses_evaluates_and_promotes_through_gates(tmp_path, monkeypatch):
    from llmops.compress.pipeline import run_pipeline
    from llmops.registry import api
    from train.helpers import REPO

    db = f"sqlite:///{tmp_path / 'r.db'}"
    monkeypatch.setenv("LLMOPS_DATABASE_URL", db)
    monkeypatch.setenv("LLMOPS_REGISTRY_ROOT", str(tmp_path / "artifacts"))
    suite = _perplexity_suite(tmp_path)
    gates = tmp_path / "gates.yaml"
    gates.write_text("aliases:\n  compact:\n    rules:\n"
                     "      - {type: required_lineage, keys: [base_model_ref, compression]}\n"
                     "      - {type: no_regression, suite: ppl, against: student, margin: 1000.0}\n")
    pipe = tmp_path / "pipe.yaml"
    pipe.write_text(
        f"name: small\nout: {tmp_path / 'out'}\n"
        # the wiring is under test, not the student: 2 short steps, no validation pass, no timing pass
        f"distill: {{recipe: {REPO / 'recipes' / 'distill.yaml'}, overrides: [train.max_steps=2, data.limit=32, "
        "data.max_length=96, train.batch_size=4, data.validation_split=0, train.eval_every=0, train.checkpoint_every=0]}\n"
        "compress: {method: int8-weight}\n"
        f"evaluate: {{suites: [{suite}], footprint: false, speed: false}}\n"
        f"promote: {{alias: compact, gates: {gates}}}\n"
    )
    doc = run_pipeline(pipe, db_url=db)
    assert doc["promotion"] == {"decision": "accepted", "alias": "compact", "version": 2}
    mv = api.get_version("small", alias="compact", db_url=db)
    assert mv.version == 2 and mv.lineage["parent_version"] == 1 and mv.lineage["compression"]["method"] == "int8-weight"
    assert api.get_version("small", alias="student", db_url=db).version == 1

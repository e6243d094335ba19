"""One command resolves its model reference once and loads its tokenizer once.

`llmops.models.refs._locate` is where a reference string becomes a directory (builtin
materialisation, registry lookup, hub cache, path checks); a `ResolvedModel` passed
down skips it. The counts below fail if a runner, backend or task resolves again.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llmops.cli.main import main as cli

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def counts(monkeypatch):
    from transformers import AutoTokenizer

    from llmops.models import refs

    seen = {"resolve": [], "tokenizer": []}
    locate, load_tok = refs._locate, AutoTokenizer.from_pretrained.__func__

    def counting_locate(mref):
        seen["resolve"].append(mref.raw)
        return locate(mref)

    def counting_tokenizer(cls, path, *args, **kwargs):
        seen["tokenizer"].append(str(path))
        return load_tok(cls, path, *args, **kwargs)

    monkeypatch.setattr(refs, "_locate", counting_locate)
    monkeypatch.setattr(AutoTokenizer, "from_pretrained", classmethod(counting_tokenizer))
    return seen


def test_eval_run_resolves_the_model_and_loads_the_tokenizer_once(counts, tmp_path, capsys):
    rc = cli(["eval", "run", "--model", "builtin:tiny", "--suite", str(REPO / "eval" / "docstring_summary.yaml"),
              "--out", str(tmp_path / "out"), "--limit", "2", "--no-cache", "--json"])
    assert rc == 0
    assert json.loads(capsys.readouterr().out)["n_samples"] == 2
    assert counts["resolve"] == ["builtin:tiny"]
    assert len(counts["tokenizer"]) == 1


def test_train_resolves_the_base_and_loads_the_tokenizer_once(counts, tmp_path, capsys):
    rc = cli(["train", str(REPO / "recipes" / "sft_lora.yaml"), "train.max_steps=1", "train.batch_size=2",
              "train.grad_accum=1", "data.limit=8", "data.validation_split=0", "train.eval_every=0",
              "train.checkpoint_every=0", "output.save_merged=false", f"output.dir={tmp_path / 'run'}"])
    assert rc == 0, capsys.readouterr().err[-2000:]
    assert counts["resolve"] == ["builtin:tiny"]
    assert len(counts["tokenizer"]) == 1
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert len(manifest["base_model_hash"]) == 64

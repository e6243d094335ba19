"""Drift: calibrated false-alarm rate, power on a half-sigma length shift, stored bins reused."""

from __future__ import annotations

import json

import numpy as np
import pytest

from llmops.cli.main import main
from llmops.errors import DataError
from llmops.monitor import drift
from llmops.monitor.drift import DriftConfig, compare, fit_profile, load_profile, save_profile
from llmops.monitor.features import read_prompts, simple_tokenize, tokenizer_spec

from llmops.monitor.synthetic import prompts

N, MEAN, STD = 300, 30.0, 7.5


def _profile(rng, **kw):
    return fit_profile(prompts(rng, N, MEAN, STD), simple_tokenize, tokenizer_spec(None), DriftConfig(**kw))


def test_same_distribution_false_alarms_at_most_5_percent_over_100_seeds():
    alarms = 0
    for seed in range(100):
        rng = np.random.default_rng(seed)
        alarms += compare(_profile(rng), prompts(rng, N, MEAN, STD))["drift"]
    assert alarms <= 5


def test_half_sigma_length_shift_is_detected():
    detected = []
    for seed in range(20):
        rng = np.random.default_rng(1000 + seed)
        report = compare(_profile(rng), prompts(rng, N, MEAN + 0.5 * STD, STD))
        detected.append(report["drift"] and "token_length" in report["drifted_features"])
        assert report["features"]["token_length"]["method"] == "ks"
    assert sum(detected) >= 19


def test_stored_bins_are_used_not_refitted(tmp_path, monkeypatch):
    rng = np.random.default_rng(7)
    path = save_profile(_profile(rng), tmp_path / "ref.json")
    profile = load_profile(path)
    current = prompts(rng, N, MEAN, STD)

    def refit(*_a, **_k):
        raise AssertionError("bins were refitted during a comparison")

    monkeypatch.setattr(drift, "_quantile_edges", refit)
    feat = profile["features"]["token_length"]
    feat["bins"], feat["ref_props"] = [20.0, 40.0], [0.25, 0.5, 0.25]  # hand-set stored bins
    got = compare(profile, current)["features"]["token_length"]["psi"]
    lengths = np.array([len(simple_tokenize(p)) for p in current])
    cur = np.array([(lengths <= 20).mean(), ((lengths > 20) & (lengths <= 40)).mean(), (lengths > 40).mean()])
    ref = np.array([0.25, 0.5, 0.25])
    assert got == pytest.approx(float(np.sum((cur - ref) * np.log(cur / ref))))


def test_large_samples_switch_to_psi_and_jensen_shannon():
    rng = np.random.default_rng(3)
    cfg = {"small_n": 100}
    profile = _profile(rng, **cfg)
    report = compare(profile, prompts(rng, N, MEAN + STD, STD))
    methods = {k: f["method"] for k, f in report["features"].items()}
    assert methods == {"token_length": "psi", "oov_rate": "psi", "token_distribution": "jensen_shannon"}
    assert report["features"]["token_length"]["psi"] >= 0.25 and report["drift"]


def test_profile_tampering_and_bad_files_are_reported(tmp_path):
    rng = np.random.default_rng(0)
    path = save_profile(_profile(rng), tmp_path / "ref.json")
    data = json.loads(path.read_text())
    data["features"]["token_length"]["bins"] = [1.0]
    path.write_text(json.dumps(data))
    with pytest.raises(DataError, match="modified after fitting"):
        load_profile(path)
    bad = tmp_path / "p.jsonl"
    bad.write_text('{"prompt": "ok"}\n{oops\n')
    with pytest.raises(DataError, match=r"p.jsonl:2: invalid JSON"):
        read_prompts(bad)


def test_cli_drift_json(tmp_path, capsys):
    rng = np.random.default_rng(11)
    ref, same, shifted = (tmp_path / n for n in ("ref.txt", "same.jsonl", "shift.txt"))
    ref.write_text("\n".join(prompts(rng, N, MEAN, STD)))
    same.write_text("".join(json.dumps({"prompt": p}) + "\n" for p in prompts(rng, N, MEAN, STD)))
    shifted.write_text("\n".join(prompts(rng, N, MEAN * 2, STD)))
    assert main(["monitor", "drift", "--reference", str(ref), "--current", str(same), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["drift"] is False and set(out["features"]) == {"token_length", "oov_rate", "token_distribution"}
    profile = tmp_path / "profile.json"
    assert main(["monitor", "profile", str(ref), "--out", str(profile)]) == 0
    capsys.readouterr()
    prom = tmp_path / "drift.prom"
    assert main(["monitor", "drift", "--reference", str(profile), "--current", str(shifted), "--json",
                 "--prometheus-textfile", str(prom)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["drift"] is True and out["features"]["token_length"]["drift"] is True
    assert 'llmops_drift_detected{feature="token_length"} 1.0' in prom.read_text()


def test_model_tokenizer_is_used_when_given(tmp_path, capsys):
    """--model REF: lengths are counted in the model's tokens (a word-level HF tokenizer built here)."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"[UNK]": 0, "[PAD]": 1, "hello": 2, "world": 3}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    model_dir = tmp_path / "tok-model"
    PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]").save_pretrained(model_dir)
    (model_dir / "config.json").write_text('{"model_type": "llama"}')
    ref, cur = tmp_path / "ref.txt", tmp_path / "cur.txt"
    ref.write_text("hello world\n" * 50)
    cur.write_text("hello there world again\n" * 50)
    profile = tmp_path / "p.json"
    assert main(["monitor", "profile", str(ref), "--out", str(profile), "--model", str(model_dir)]) == 0
    assert json.loads(profile.read_text())["tokenizer"] == {"kind": "hf", "ref": str(model_dir)}
    capsys.readouterr()
    assert main(["monitor", "drift", "--reference", str(profile), "--current", str(cur), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["features"]["token_length"]["current_mean"] == 4.0  # 4 tokens, 2 of them [UNK]
    assert report["features"]["oov_rate"]["current_mean"] == 0.5 and report["drift"] is True

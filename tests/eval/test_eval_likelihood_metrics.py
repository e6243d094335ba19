"""Log-likelihood metrics as lm-evaluation-harness defines them: acc_norm divides by the
choice's own length (not prompt + delimiter + choice), acc_bytes by its UTF-8 bytes;
word/byte perplexity and bits per byte count words and bytes of the text; Holm's
correction; token perplexity refused across tokenizers."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from llmops.eval.metrics import build_metric
from llmops.eval.stats import direction, holm


def test_accuracy_norm_divides_by_the_choice_length() -> None:
    # The example: log-likelihoods [-2.0, -3.5] for "A" and "BB". Per choice character
    # "BB" wins (-1.75 > -2.0); dividing by len(" " + choice) would pick "A" (-1.0 > -1.17).
    res = build_metric("accuracy").compute([[-2.0, -3.5]], [["A", "BB"]], [1])
    assert res["accuracy"].score == 0.0 and res["accuracy_norm"].score == 1.0


def test_accuracy_bytes_counts_utf8_bytes() -> None:
    # "é" is one character but two UTF-8 bytes
    res = build_metric("accuracy").compute([[-1.5, -3.2]], [["é", "ab"]], [0])
    assert res["accuracy_norm"].score == 1.0  # -1.5/1 > -3.2/2
    res = build_metric("accuracy").compute([[-1.7, -1.6]], [["éé", "ab"]], [0])
    assert res["accuracy_norm"].score == 0.0 and res["accuracy_bytes"].score == 1.0  # -1.7/4 > -1.6/2


def test_word_byte_perplexity_and_bits_per_byte() -> None:
    texts = ["hello world", "  two  spaces\n"]
    lls = [-10.0, -6.0]
    res = build_metric("perplexity").compute(lls, [3, 4], texts)
    words = len(["hello", "world"]) + len(["", "two", "spaces", ""])  # re.split(r"\s+") as lm-eval counts
    nbytes = sum(len(t.encode()) for t in texts)
    assert res["perplexity"].score == pytest.approx(math.exp(16 / 7))
    assert res["word_perplexity"].score == pytest.approx(math.exp(16 / words))
    assert res["byte_perplexity"].score == pytest.approx(math.exp(16 / nbytes))
    assert res["bits_per_byte"].score == pytest.approx(16 / nbytes / math.log(2))
    metric = build_metric("perplexity")
    assert metric.tokenizer_dependent("perplexity") and not metric.tokenizer_dependent("bits_per_byte")


def test_holm_and_direction() -> None:
    adjusted = holm({"a": 0.01, "b": 0.04, "c": 0.03})
    assert adjusted == pytest.approx({"a": 0.03, "c": 0.06, "b": 0.06})  # 3p, max(2p, prev), max(p, prev)
    assert direction(+0.1, 0.01, True) == "better" and direction(+0.1, 0.01, False) == "worse"
    assert direction(-0.1, 0.2, True) == "no difference"


def _fake_run(path: Path, tokenizer_hash: str, nll: list[float]) -> Path:
    path.mkdir(parents=True)
    metric = build_metric("perplexity")
    res = metric.compute([-x for x in nll], [5] * len(nll), ["a b c"] * len(nll))
    rows = [{"index": i, "stats": {k: r.stats[i].tolist() for k, r in res.items()}} for i in range(len(nll))]
    (path / "samples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    metrics = {k: {"score": r.score, "spec": metric.spec(), "binary": False, "higher_is_better": False,
                   "tokenizer_dependent": metric.tokenizer_dependent(k)} for k, r in res.items()}
    prov = {"suite_hash": "s", "dataset_fingerprint": "d", "tokenizer_hash": tokenizer_hash, "seed": 0}
    (path / "results.json").write_text(json.dumps({"metrics": metrics, "provenance": prov}))
    return path


def test_token_perplexity_is_refused_across_tokenizers(tmp_path: Path) -> None:
    from llmops.eval.api import paired_compare

    rng = np.random.default_rng(0)
    base = _fake_run(tmp_path / "a", "tok-1", list(rng.uniform(5, 9, 30)))
    same_tok = _fake_run(tmp_path / "b", "tok-1", list(rng.uniform(5, 9, 30)))
    other_tok = _fake_run(tmp_path / "c", "tok-2", list(rng.uniform(5, 9, 30)))
    assert "p_value" in paired_compare(base, same_tok)["perplexity"]
    cmp = paired_compare(base, other_tok)
    assert "refused" in cmp["perplexity"] and "byte" in cmp["perplexity"]["refused"]
    assert {"p_value", "p_holm", "delta_ci95"} <= cmp["bits_per_byte"].keys()

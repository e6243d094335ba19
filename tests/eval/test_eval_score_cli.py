"""`llmops eval score`: JSON equal to sacrebleu / rouge-score, JSONL input, clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import sacrebleu
from rouge_score.rouge_scorer import RougeScorer

from eval_corpora import HYPS, REFS_1, REFS_2
from llmops.cli.main import main


def _write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def _write_jsonl(path: Path, texts: list[str]) -> Path:
    path.write_text("".join(json.dumps({"text": t}, ensure_ascii=False) + "\n" for t in texts), encoding="utf-8")
    return path


def _score(capsys, *args: str) -> dict:
    assert main(["eval", "score", *args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def _one_line(hyps: list[str]) -> list[str]:
    return [h.replace("\n", " ") for h in hyps]


@pytest.mark.parametrize("metric,ref_cls", [("bleu", sacrebleu.BLEU), ("chrf", sacrebleu.CHRF), ("ter", sacrebleu.TER)])
def test_sacrebleu_metrics_json(tmp_path: Path, capsys, metric: str, ref_cls) -> None:
    hyps, r1, r2 = _one_line(HYPS), _one_line(REFS_1), _one_line(REFS_2)
    p = _write_lines(tmp_path / "hyp.txt", hyps)
    f1, f2 = _write_lines(tmp_path / "r1.txt", r1), _write_lines(tmp_path / "r2.txt", r2)
    out = _score(capsys, "--metric", metric, "--predictions", str(p), "--references", str(f1), "--references", str(f2))
    ref = ref_cls()
    expected = ref.corpus_score(hyps, [r1, r2])
    assert out["score"] == pytest.approx(expected.score, abs=1e-9)
    assert out["signature"] == str(ref.get_signature())


def test_chrfpp_and_options(tmp_path: Path, capsys) -> None:
    hyps, r1 = _one_line(HYPS), _one_line(REFS_1)
    p, f1 = _write_lines(tmp_path / "hyp.txt", hyps), _write_lines(tmp_path / "r1.txt", r1)
    out = _score(capsys, "--metric", "chrf++", "--predictions", str(p), "--references", str(f1))
    assert out["score"] == pytest.approx(sacrebleu.CHRF(word_order=2).corpus_score(hyps, [r1]).score, abs=1e-9)
    out = _score(capsys, "--metric", "bleu", "-o", "tokenize=zh", "--predictions", str(p), "--references", str(f1))
    assert out["score"] == pytest.approx(sacrebleu.BLEU(tokenize="zh").corpus_score(hyps, [r1]).score, abs=1e-9)
    assert "tok:zh" in out["signature"]


def test_rouge_jsonl_multiline(tmp_path: Path, capsys) -> None:
    p, f1 = _write_jsonl(tmp_path / "hyp.jsonl", HYPS), _write_jsonl(tmp_path / "ref.jsonl", REFS_1)
    out = _score(capsys, "--metric", "rouge", "--predictions", str(p), "--references", str(f1))
    scorer = RougeScorer(["rouge1", "rouge2", "rougeL", "rougeLsum"])
    rows = [scorer.score(r, h) for h, r in zip(HYPS, REFS_1)]
    for t in ("rouge1", "rouge2", "rougeL", "rougeLsum"):
        assert out[t] == pytest.approx(float(np.mean([row[t].fmeasure for row in rows])), abs=1e-9)
    assert 0 <= out["rougeLsum"] <= 1


def test_ci_flag(tmp_path: Path, capsys) -> None:
    p, f1 = _write_lines(tmp_path / "h.txt", _one_line(HYPS)), _write_lines(tmp_path / "r.txt", _one_line(REFS_1))
    a = _score(capsys, "--metric", "bleu", "--ci", "--seed", "3", "--predictions", str(p), "--references", str(f1))
    b = _score(capsys, "--metric", "bleu", "--ci", "--seed", "3", "--predictions", str(p), "--references", str(f1))
    assert a["ci95"] == b["ci95"]
    assert a["ci95"]["bleu"][0] <= a["score"] <= a["ci95"]["bleu"][1]


def _error(capsys, *args: str) -> str:
    assert main(["eval", "score", *args]) == 2
    return capsys.readouterr().err


def test_errors(tmp_path: Path, capsys) -> None:
    p = _write_lines(tmp_path / "h.txt", ["a", "b", "c"])
    short = _write_lines(tmp_path / "r.txt", ["a", "b"])
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "ok"}\n{"txt": "no"}\n')
    err = _error(capsys, "--metric", "bleu", "--predictions", str(p), "--references", str(short))
    assert err.startswith("error: ") and "r.txt has 2 segments" in err and "h.txt has 3" in err
    err = _error(capsys, "--metric", "bleu", "--predictions", str(empty), "--references", str(short))
    assert "empty.txt: empty file" in err
    err = _error(capsys, "--metric", "rouge", "--predictions", str(bad), "--references", str(short))
    assert "bad.jsonl:2" in err and "text" in err
    err = _error(capsys, "--metric", "blue", "--predictions", str(p), "--references", str(p))
    assert "did you mean `bleu`" in err
    err = _error(capsys, "--metric", "perplexity", "--predictions", str(p), "--references", str(p))
    assert "eval run" in err
    err = _error(capsys, "--metric", "bleu", "--predictions", str(tmp_path / "nope.txt"), "--references", str(p))
    assert "nope.txt: file not found" in err

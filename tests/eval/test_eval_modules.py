"""The evaluate modules in eval/metrics load by local path (offline) and give the same
numbers as the reference implementations."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import sacrebleu
from rouge_score.rouge_scorer import RougeScorer

from eval_corpora import HYPS, REFS_1, REFS_2

pytestmark = pytest.mark.slow  # loads evaluate modules (imports datasets)

METRICS_DIR = Path(__file__).resolve().parents[2] / "eval" / "metrics"


def test_every_metric_ships_a_module() -> None:
    from llmops.eval.metrics import METRICS

    shipped = {p.name for p in METRICS_DIR.iterdir() if (p / f"{p.name}.py").is_file()}
    expected = {n.replace("++", "_plus_plus") for n in METRICS}
    assert expected <= shipped


def test_modules_load_offline_and_match_references(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("HF_MODULES_CACHE", str(tmp_path / "modules"))
    import evaluate

    bleu = evaluate.load(str(METRICS_DIR / "bleu"))
    refs = [[a, b] for a, b in zip(REFS_1, REFS_2)]
    one_line = [h.replace("\n", " ") for h in HYPS]
    out = bleu.compute(predictions=one_line, references=refs)
    expected = sacrebleu.BLEU().corpus_score(one_line, [REFS_1, REFS_2]).score
    assert out["score"] == pytest.approx(expected, abs=1e-9)

    rouge = evaluate.load(str(METRICS_DIR / "rouge"))
    out = rouge.compute(predictions=HYPS, references=REFS_1, use_stemmer=True)
    scorer = RougeScorer(["rouge1", "rouge2", "rougeL", "rougeLsum"], use_stemmer=True)
    rows = [scorer.score(r, h) for h, r in zip(HYPS, REFS_1)]
    for t in ("rouge1", "rouge2", "rougeL", "rougeLsum"):
        assert out[t] == pytest.approx(float(np.mean([row[t].fmeasure for row in rows])), abs=1e-9)

    acc = evaluate.load(str(METRICS_DIR / "accuracy"))
    out = acc.compute(predictions=[[-1.0, -2.0], [-3.0, -1.0], [-9.0, -2.0]], references=[0, 0, 1],
                      choice_lengths=[[1, 1], [30, 1], [1, 1]])
    assert out == {"accuracy": pytest.approx(2 / 3), "accuracy_norm": pytest.approx(1.0)}

"""Metric parity with the reference implementations (sacrebleu, rouge-score) to 1e-9."""

from __future__ import annotations

import numpy as np
import pytest
import sacrebleu
from rouge_score.rouge_scorer import RougeScorer

from llmops.errors import ConfigError, DataError
from llmops.eval.metrics import build_metric
from llmops.eval.metrics.rouge import split_sentences
from eval_corpora import HYPS, REFS_1, REFS_2, random_corpus

SACRE = {
    "bleu": lambda **kw: sacrebleu.BLEU(**kw),
    "chrf": lambda **kw: sacrebleu.CHRF(**kw),
    "chrf++": lambda **kw: sacrebleu.CHRF(word_order=2, **kw),
    "ter": lambda **kw: sacrebleu.TER(**kw),
}
CORPORA = {
    "varied-1ref": (HYPS, [[r] for r in REFS_1]),
    "varied-2ref": (HYPS, [[a, b] for a, b in zip(REFS_1, REFS_2)]),
    "random-3ref": random_corpus(150, seed=3, n_refs=3),
    "all-empty-hyps": ([""] * 5, [["a b c"], ["d"], ["e f"], ["g"], ["h i j k"]]),
}


@pytest.mark.parametrize("corpus", list(CORPORA))
@pytest.mark.parametrize("name", list(SACRE))
def test_sacrebleu_parity(name: str, corpus: str) -> None:
    hyps, refs = CORPORA[corpus]
    streams = [list(s) for s in zip(*refs)]  # K streams of N segments: sacrebleu's orientation
    reference = SACRE[name]()
    expected = reference.corpus_score(hyps, streams)
    ours = build_metric(name).compute(hyps, refs)[name]
    assert ours.score == pytest.approx(expected.score, abs=1e-9)
    assert ours.signature == str(reference.get_signature())
    assert ours.stats.shape[0] == len(hyps)


@pytest.mark.parametrize("options", [{"tokenize": "zh"}, {"lowercase": True}, {"smooth_method": "floor"}])
def test_bleu_options_parity(options: dict) -> None:
    refs = [[a, b] for a, b in zip(REFS_1, REFS_2)]
    expected = sacrebleu.BLEU(**options).corpus_score(HYPS, [REFS_1, REFS_2])
    assert build_metric("bleu", **options).compute(HYPS, refs)["bleu"].score == pytest.approx(expected.score, abs=1e-9)


def test_variable_reference_count_matches_sacrebleu_none_padding() -> None:
    refs = [[REFS_1[i]] if i % 2 else [REFS_1[i], REFS_2[i]] for i in range(len(HYPS))]
    streams = [REFS_1, [REFS_2[i] if i % 2 == 0 else None for i in range(len(HYPS))]]
    ref = sacrebleu.BLEU()
    expected = ref.corpus_score(HYPS, streams)
    ours = build_metric("bleu").compute(HYPS, refs)["bleu"]
    assert ours.score == pytest.approx(expected.score, abs=1e-9)
    assert "nrefs:var" in ours.signature


def _rouge_reference(hyps, refs, stemmer=False):
    scorer = RougeScorer(["rouge1", "rouge2", "rougeL", "rougeLsum"], use_stemmer=stemmer)
    rows = [scorer.score_multi(r, h) for h, r in zip(hyps, refs)]
    return {t: float(np.mean([row[t].fmeasure for row in rows])) for t in ("rouge1", "rouge2", "rougeL", "rougeLsum")}


@pytest.mark.parametrize("stemmer", [False, True])
@pytest.mark.parametrize("corpus", list(CORPORA))
def test_rouge_parity(corpus: str, stemmer: bool) -> None:
    hyps, refs = CORPORA[corpus]
    expected = _rouge_reference(hyps, refs, stemmer)
    ours = build_metric("rouge", use_stemmer=stemmer).compute(hyps, refs)
    for t, value in expected.items():
        assert ours[t].score == pytest.approx(value, abs=1e-9), t


def test_rouge_lsum_multiline_differs_from_rougeL_and_matches_reference() -> None:
    hyps = ["the cat sat.\nthe dog ran.", "one two\nthree four five"]
    refs = [["the dog ran.\nthe cat sat."], ["three four five\none two"]]
    expected = _rouge_reference(hyps, refs)
    ours = build_metric("rouge").compute(hyps, refs)
    assert ours["rougeLsum"].score == pytest.approx(expected["rougeLsum"], abs=1e-9)
    assert ours["rougeLsum"].score > ours["rougeL"].score  # summary-level LCS sees reordered sentences


def test_rouge_sentence_splitter_is_opt_in() -> None:
    hyp, ref = "The dog ran. The cat sat.", "The cat sat. The dog ran."
    plain = build_metric("rouge", rouge_types=["rougeLsum"]).compute([hyp], [[ref]])["rougeLsum"].score
    split = build_metric("rouge", rouge_types=["rougeLsum"], split_sentences=True).compute([hyp], [[ref]])["rougeLsum"].score
    scorer = RougeScorer(["rougeLsum"])
    assert plain == pytest.approx(scorer.score(ref, hyp)["rougeLsum"].fmeasure, abs=1e-9)
    assert split == pytest.approx(scorer.score(split_sentences(ref), split_sentences(hyp))["rougeLsum"].fmeasure, abs=1e-9)
    assert split == pytest.approx(1.0)
    assert plain < 1.0


def test_corpus_score_equals_reduction_of_summed_stats() -> None:
    hyps, refs = CORPORA["random-3ref"]
    for name in ("bleu", "chrf", "ter", "rouge", "token_f1"):
        metric = build_metric(name)
        for out, res in metric.compute(hyps, refs).items():
            assert metric.reduce(out, res.stats.sum(0)) == pytest.approx(res.score, abs=1e-12)


def test_exact_match_and_token_f1() -> None:
    preds = ["The Cat!", "a dog", "  spaces  ", "", "Paris"]
    refs = [["the cat"], ["dog"], ["spaces"], [""], ["London", "paris"]]
    strict = build_metric("exact_match", normalize="none").compute(preds, refs)["exact_match"]
    squad = build_metric("exact_match", normalize="squad").compute(preds, refs)["exact_match"]
    assert strict.score == pytest.approx(1 / 5)  # only the empty pair
    assert squad.score == pytest.approx(5 / 5)
    assert build_metric("exact_match").compute(preds, refs)["exact_match"].score == pytest.approx(2 / 5)  # strip
    f1 = build_metric("token_f1").compute(["the big red dog", "x"], [["red dog barks"], ["y"]])["token_f1"]
    # "big red dog" vs "red dog barks": 2 common, P=2/3, R=2/3 → F1=2/3; second pair 0
    assert f1.score == pytest.approx((2 / 3 + 0) / 2)


def test_multiple_choice_and_perplexity() -> None:
    acc = build_metric("accuracy").compute(
        [[-1.0, -2.0, -3.0], [-5.0, -4.0], [-10.0, -9.0]], [["a", "b", "c"], ["a" * 10, "b"], ["a" * 20, "bb"]],
        [0, 0, 0],
    )
    assert acc["accuracy"].score == pytest.approx(1 / 3)
    # per-char: sample 2 → [-0.5, -4] picks 0 (gold); sample 3 → [-0.5, -4.5] picks 0
    assert acc["accuracy_norm"].score == pytest.approx(1.0)
    ppl = build_metric("perplexity").compute([-10.0, -20.0], [5, 5], ["one two", "three four"])["perplexity"]
    assert ppl.score == pytest.approx(np.exp(30 / 10))


def test_bad_metric_input_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="did you mean `bleu`"):
        build_metric("bleuu")
    with pytest.raises(ConfigError, match="rouge_types"):
        build_metric("rouge", rouge_types=["rouge9x"])
    with pytest.raises(ConfigError, match="invalid option"):
        build_metric("bleu", tokenise="13a")
    with pytest.raises(DataError, match="2 predictions but 1"):
        build_metric("bleu").compute(["a", "b"], [["a"]])

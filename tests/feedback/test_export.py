"""Export strategies on hand-built feedback: expected pairs, margins, ties, agreement, snapshot ids,
and the exported file feeding `datasets` and TRL's DPOTrainer."""

from __future__ import annotations

import json

import pytest

from llmops.feedback.agreement import krippendorff_alpha
from llmops.feedback.export import export_preferences
from llmops.feedback.queries import quality_by_model
from llmops.feedback.store import FeedbackStore


@pytest.fixture
def data(db_url):
    """Four items (see each block); returns response ids by letter."""
    s = FeedbackStore(db_url)
    alice, bob, carol = s.rater("alice"), s.rater("bob"), s.rater("carol")
    ids: dict[str, int] = {}

    def item(prompt, letters, models, context=None):
        made = s.create_item(prompt, [{"text": f"resp {x}", "model": m} for x, m in zip(letters, models)], context=context)
        ids.update(zip(letters, made.response_ids))
        return made.item_id

    # item 1: two raters; means A 4.5, B 3, C 1.5.
    ids["item1"] = item("q1", "ABC", ["m1", "m2", "m2"], context="ctx1")
    for rater, scores in ((alice, (5, 3, 1)), (bob, (4, 3, 2))):
        for x, sc in zip("ABC", scores):
            s.add_rating(ids[x], sc, rater)
    # item 2: a tie in ratings: nothing to export.
    ids["item2"] = item("q2", "DE", ["m1", "m2"])
    s.add_rating(ids["D"], 3, alice)
    s.add_rating(ids["E"], 3, alice)
    # item 3: tie at the top (F, G = 4; H = 2): the lower id is "best".
    ids["item3"] = item("q3", "FGH", ["m1", "m1", "m2"])
    for x, sc in zip("FGH", (4, 4, 2)):
        s.add_rating(ids[x], sc, alice)
    # item 4: comparisons (ranking K>I>J by alice; I>K by bob; tie I~K by carol) and ratings
    # that comparisons override on the pair they decide.
    ids["item4"] = item("q4", "IJK", ["m1", "m2", "m2"])
    s.add_comparison({"item_id": ids["item4"], "ranking": [ids["K"], ids["I"], ids["J"]]}, alice)
    s.add_comparison({"item_id": ids["item4"], "chosen": ids["I"], "rejected": ids["K"]}, bob)
    s.add_comparison({"item_id": ids["item4"], "tie": [ids["I"], ids["K"]]}, carol)
    s.add_rating(ids["I"], 5, alice)
    s.add_rating(ids["J"], 1, alice)
    return ids


def pairs(result_path):
    rows = [json.loads(line) for line in open(result_path)]
    return rows, [(r["chosen"][-1], r["rejected"][-1], r["margin"]) for r in rows]


def test_best_vs_worst(db_url, data, tmp_path):
    res = export_preferences(db_url, tmp_path / "p.jsonl", "best_vs_worst")
    rows, got = pairs(res.path)
    # Margins on one scale, (0, 1]: rating gap / scale width (A 4.5 vs C 1.5 on 1-5: 3/4), net vote share.
    assert got == [("A", "C", 0.75), ("F", "H", 0.5), ("I", "J", 1.0), ("K", "J", 1.0)]
    assert [r["agreement"] for r in rows] == [1.0, 1.0, 1.0, 1.0]
    assert rows[0]["prompt"] == "ctx1\n\nq1" and rows[0]["n_raters"] == 2 and rows[0]["item_id"] == data["item1"]
    assert [r["source"] for r in rows] == ["ratings", "ratings", "comparisons", "comparisons"]
    assert set(rows[0]) >= {"prompt", "chosen", "rejected", "margin", "item_id", "n_raters"}
    meta = json.loads(res.meta_path.read_text())
    assert meta["snapshot_id"] == res.snapshot_id and meta["n_rows"] == 4


def test_all_pairs_and_min_margin(db_url, data, tmp_path):
    _, got = pairs(export_preferences(db_url, tmp_path / "a.jsonl", "all_pairs").path)
    assert got == [("A", "B", 0.375), ("A", "C", 0.75), ("B", "C", 0.375), ("F", "H", 0.5), ("G", "H", 0.5),
                   ("I", "J", 1.0), ("K", "J", 1.0)]
    _, got = pairs(export_preferences(db_url, tmp_path / "m.jsonl", "all_pairs", min_margin=0.5).path)
    assert got == [("A", "C", 0.75), ("F", "H", 0.5), ("G", "H", 0.5), ("I", "J", 1.0), ("K", "J", 1.0)]


def test_best_vs_random_lower_is_seeded(db_url, data, tmp_path):
    runs = [pairs(export_preferences(db_url, tmp_path / f"r{i}.jsonl", "best_vs_random_lower", seed=7).path)[1]
            for i in range(2)]
    assert runs[0] == runs[1]
    rating_pairs = [p for p in runs[0] if p[0] in "AF"]
    assert rating_pairs[0][0] == "A" and rating_pairs[0][1] in "BC"
    assert rating_pairs[1][:2] == ("F", "H")  # G ties F, so H is the only strictly lower one
    seen = {pairs(export_preferences(db_url, tmp_path / f"s{s}.jsonl", "best_vs_random_lower", seed=s).path)[1][0][1]
            for s in range(12)}
    assert seen == {"B", "C"}


def test_snapshot_is_deterministic_and_changes_with_data(db_url, data, tmp_path):
    a = export_preferences(db_url, tmp_path / "1.jsonl")
    b = export_preferences(db_url, tmp_path / "2.jsonl")
    assert a.snapshot_id == b.snapshot_id and (tmp_path / "1.jsonl").read_bytes() == (tmp_path / "2.jsonl").read_bytes()
    # The id addresses the exported content: feedback that leaves the rows unchanged keeps it...
    store = FeedbackStore(db_url)
    store.add_rating(data["B"], 5, store.rater("dave"))
    assert export_preferences(db_url, tmp_path / "3.jsonl").snapshot_id == a.snapshot_id
    # ...feedback that changes a row changes it.
    store.add_rating(data["C"], 5, store.rater("dave"))
    assert export_preferences(db_url, tmp_path / "4.jsonl").snapshot_id != a.snapshot_id


def test_agreement_matches_hand_computation(db_url, data, tmp_path):
    # Pairable units are A (5, 4), B (3, 3), C (1, 2): D_o = 4/6, D_e = 120/30 → alpha = 1 - (2/3)/4 = 5/6.
    res = export_preferences(db_url, tmp_path / "p.jsonl")
    assert res.agreement["krippendorff_alpha_interval"] == pytest.approx(5 / 6)
    assert res.agreement["n_units_multiply_rated"] == 3


def test_krippendorff_reference_values():
    # Krippendorff (2011) reliability data: 4 coders, 12 units, published alpha
    # interval 0.849 and ordinal 0.815.
    coders = [[1, 2, 3, 3, 2, 1, 4, 1, 2, None, None, None],
              [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, None, 3],
              [None, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, None],
              [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, None]]
    units = {u: [c[u] for c in coders if c[u] is not None] for u in range(12)}
    assert krippendorff_alpha(units, "interval") == pytest.approx(0.849, abs=5e-4)
    assert krippendorff_alpha(units, "ordinal") == pytest.approx(0.815, abs=5e-4)
    assert krippendorff_alpha({1: [3, 3], 2: [3, 3]}) is None  # no variation: undefined
    assert krippendorff_alpha({1: [1, 5], 2: [5, 1]}) < 0  # systematic disagreement


def test_quality_by_model(db_url, data):
    rows = {r["model"]: r for r in quality_by_model(db_url)}
    # m1: A 5,4  D 3  F 4  G 4  I 5 → 25/6; m2: B 3,3 C 1,2 E 3 H 2 J 1 → 15/7
    assert rows["m1"]["n_ratings"] == 6 and rows["m1"]["mean_rating"] == pytest.approx(25 / 6)
    assert rows["m2"]["n_ratings"] == 7 and rows["m2"]["mean_rating"] == pytest.approx(15 / 7)
    # Cross-model pairs (I=m1 vs J,K=m2): alice K>I, I>J; bob I>K; carol I~K → m1: 1+0+1+0.5 of 4.
    assert rows["m1"]["win_rate"] == pytest.approx(2.5 / 4) and rows["m1"]["n_comparisons"] == 3
    assert rows["m2"]["win_rate"] == pytest.approx(1.5 / 4)
    from datetime import datetime, timedelta, timezone

    future = datetime.now(timezone.utc) + timedelta(days=1)
    assert all(r["n_ratings"] == 0 and r["win_rate"] is None for r in quality_by_model(db_url, since=future))


def test_exported_file_loads_with_datasets_and_trl(sqlite_url, tmp_path):
    import datasets
    from trl.data_utils import is_conversational

    s = FeedbackStore(sqlite_url)
    r = s.rater("alice")
    for i in range(4):
        made = s.create_item(f"question {i}?", [{"text": f"good answer {i}"}, {"text": f"bad {i}"}])
        s.add_rating(made.response_ids[0], 5, r)
        s.add_rating(made.response_ids[1], 1, r)
    res = export_preferences(sqlite_url, tmp_path / "prefs.jsonl")
    ds = datasets.load_dataset("json", data_files=str(res.path), split="train", cache_dir=str(tmp_path / "hf"))
    assert ds.num_rows == 4 and {"prompt", "chosen", "rejected"} <= set(ds.column_names)
    assert not is_conversational(ds[0])  # TRL's standard (non-chat) preference format
    assert all(isinstance(ds[0][k], str) for k in ("prompt", "chosen", "rejected"))


@pytest.mark.slow
def test_dpo_trainer_takes_a_step_on_the_export(sqlite_url, tmp_path):
    import datasets
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import DPOConfig, DPOTrainer

    from llmops.models.builtin import materialize

    s = FeedbackStore(sqlite_url)
    r = s.rater("alice")
    for i in range(4):
        made = s.create_item(f"Name a colour {i}.", [{"text": "Blue."}, {"text": "I refuse."}])
        s.add_rating(made.response_ids[0], 5, r)
        s.add_rating(made.response_ids[1], 2, r)
    res = export_preferences(sqlite_url, tmp_path / "prefs.jsonl")
    ds = datasets.load_dataset("json", data_files=str(res.path), split="train", cache_dir=str(tmp_path / "hf"))
    path = materialize("tiny")
    model = AutoModelForCausalLM.from_pretrained(path)
    tok = AutoTokenizer.from_pretrained(path)
    args = DPOConfig(output_dir=str(tmp_path / "dpo"), max_steps=1, per_device_train_batch_size=2, report_to=[],
                     logging_steps=1, save_strategy="no", use_cpu=True, max_length=64)
    trainer = DPOTrainer(model=model, args=args, train_dataset=ds, processing_class=tok)
    out = trainer.train()
    assert out.global_step == 1 and out.training_loss == pytest.approx(out.training_loss)  # finite
    assert out.training_loss == out.training_loss and out.training_loss > 0


def test_identical_texts_and_repeated_pairs_are_dropped(db_url, tmp_path):
    s = FeedbackStore(db_url)
    alice = s.rater("alice")
    for _ in range(2):  # the same prompt served twice with the same answers: one pair, not two
        made = s.create_item("q", [{"text": "good", "model": "m"}, {"text": "bad", "model": "m"},
                                   {"text": "bad", "model": "m"}])
        for rid, score in zip(made.response_ids, (5, 2, 1)):
            s.add_rating(rid, score, alice)
    res = export_preferences(db_url, tmp_path / "d.jsonl", "all_pairs")
    rows = [json.loads(line) for line in open(res.path)]
    assert [(r["chosen"], r["rejected"]) for r in rows] == [("good", "bad")]
    assert res.agreement["n_pairs_dropped_as_duplicates"] == 5  # 2 same-text pairs + 3 repeats


def test_corrections_as_pairs(db_url, data, tmp_path):
    """Edits as preferences: chosen = a rater's correction, rejected = the response it corrects."""
    from llmops.feedback.project_store import ProjectStore

    ps = ProjectStore(db_url)
    dave = ps.rater("dave")
    ps.add_correction(data["C"], "resp C fixed", dave)  # C's mean 1.5 on 1-5 = 0.125 → margin 0.875
    ps.add_correction(data["A"], "resp A fixed", dave, metadata={"simulated": True})  # A 4.5 → 0.125
    ps.add_correction(data["D"], "resp D", dave)  # the same text as D: not informative, dropped
    res = export_preferences(db_url, tmp_path / "c.jsonl", "corrections")
    rows, got = pairs(res.path)
    assert [(r["chosen"], r["rejected"], r["margin"]) for r in rows] == [
        ("resp C fixed", "resp C", 0.875), ("resp A fixed", "resp A", 0.125)]
    assert all(r["source"] == "corrections" and r["chosen_response_id"] is None and r["agreement"] is None
               and r["n_raters"] == 1 for r in rows)
    assert [r["rejected_response_id"] for r in rows] == [data["C"], data["A"]]
    assert rows[0]["prompt"] == "ctx1\n\nq1"
    assert res.agreement["n_corrections"] == 3 and res.agreement["n_pairs_dropped_as_duplicates"] == 1
    # min_margin applies to them as to every pair
    _, got = pairs(export_preferences(db_url, tmp_path / "m.jsonl", "corrections", min_margin=0.5).path)
    assert [g[1] for g in got] == ["C"]
    # all_pairs_and_corrections = all_pairs, each item followed by its correction pairs
    rows, both = pairs(export_preferences(db_url, tmp_path / "b.jsonl", "all_pairs_and_corrections").path)
    _, plain = pairs(export_preferences(db_url, tmp_path / "a.jsonl", "all_pairs").path)
    assert [p for p, r in zip(both, rows) if r["source"] != "corrections"] == plain
    assert [r["source"] for r in rows[3:5]] == ["corrections"] * 2  # item 1: its 3 rating pairs, then corrections
    assert both[3:5] == [("d", "C", 0.875), ("d", "A", 0.125)]
    # a new correction changes the snapshot (it is part of the data)
    before = export_preferences(db_url, tmp_path / "s1.jsonl", "corrections").snapshot_id
    ps.add_correction(data["B"], "resp B fixed", dave)
    assert export_preferences(db_url, tmp_path / "s2.jsonl", "corrections").snapshot_id != before


def test_cli_strategies_match_the_exporter():
    from llmops.cli.feedback_export import STRATEGIES as CLI
    from llmops.feedback.exports.pairs import STRATEGIES

    assert CLI == STRATEGIES

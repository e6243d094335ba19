"""Export formats, filters and outputs on hand-built feedback: expected rows, one margin scale,
agreement, filters, and byte-identical files re-written from a snapshot id."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from llmops.feedback.errors import Invalid, NotFound
from llmops.feedback.exports import export, make_filters, write_snapshot
from llmops.feedback.store import FeedbackStore
from llmops.feedback.tables import Correction, Project, ProjectItem


@pytest.fixture
def fb(db_url):
    return make_feedback(db_url)


def make_feedback(db_url: str) -> dict[str, int]:
    """Two items in project "docs" (model m@1) and one in "other" (model m@2); see the scores below."""
    s = FeedbackStore(db_url)
    alice, bob, carol = s.rater("alice"), s.rater("bob"), s.rater("carol")
    ids: dict[str, int] = {}

    def item(prompt, letters, model, version, **kw):
        made = s.create_item(prompt, [{"text": f"resp {x}", "model": model, "model_version": version}
                                      for x in letters], **kw)
        ids.update(zip(letters, made.response_ids))
        return made.item_id

    chat = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"},
            {"role": "assistant", "content": "hello"}, {"role": "user", "content": "q1"}]
    ids["item1"] = item("q1", "AB", "m", "1", context="user: hi\nassistant: hello", metadata={"messages": chat})
    # A: 5, 4, 2 (mean 11/3 → 2/3 on [0,1]); B: 1, 2, 3 (mean 2 → 1/4): alice and bob agree, carol does not.
    for rater, (a, b) in ((alice, (5, 1)), (bob, (4, 2)), (carol, (2, 3))):
        s.add_rating(ids["A"], a, rater)
        s.add_rating(ids["B"], b, rater)
    ids["item2"] = item("q2", "CD", "m", "1")
    s.add_comparison({"item_id": ids["item2"], "chosen": ids["C"], "rejected": ids["D"]}, alice)
    s.add_comparison({"item_id": ids["item2"], "chosen": ids["C"], "rejected": ids["D"]}, bob)
    s.add_comparison({"item_id": ids["item2"], "chosen": ids["D"], "rejected": ids["C"]}, carol)
    ids["item3"] = item("q3", "EF", "m", "2")
    s.add_rating(ids["E"], 4, alice)
    s.add_rating(ids["F"], 3, alice)  # exactly at the KTO threshold 0.5: ambiguous, left out
    with s.transaction() as session:
        docs, other = Project(name="docs", questions=[]), Project(name="other", questions=[])
        session.add_all([docs, other])
        session.flush()
        session.add_all([ProjectItem(item_id=ids["item1"], project_id=docs.id, routed_by="admin"),
                         ProjectItem(item_id=ids["item2"], project_id=docs.id, routed_by="admin"),
                         ProjectItem(item_id=ids["item3"], project_id=other.id, routed_by="admin")])
        session.add_all([Correction(item_id=ids["item1"], response_id=ids["B"], rater_id=bob, text="better q1"),
                         Correction(item_id=ids["item3"], response_id=ids["F"], rater_id=alice, text="better q3",
                                    meta={"simulated": True})])
    return ids


def rows(path):
    return [json.loads(line) for line in open(path)]


def test_pair_formats_share_one_margin_scale_and_carry_agreement(db_url, fb, tmp_path):
    got = rows(export(db_url, "trl-preference", tmp_path / "p.jsonl").path)
    by = {(r["chosen"], r["rejected"]): r for r in got}
    # Comparisons: C wins 2 of 3 → margin (2-1)/3, agreement 2/3. Ratings: (11/3 - 2) / 4 = 5/12;
    # agreement: 2 of the 3 raters who rated both order A above B.
    assert by[("resp C", "resp D")]["margin"] == pytest.approx(1 / 3, abs=1e-6)
    assert by[("resp C", "resp D")]["agreement"] == pytest.approx(2 / 3, abs=1e-6)
    assert by[("resp A", "resp B")]["margin"] == pytest.approx(5 / 12, abs=1e-6)
    assert by[("resp A", "resp B")]["agreement"] == pytest.approx(2 / 3, abs=1e-6)
    assert by[("resp E", "resp F")]["margin"] == 0.25 and by[("resp E", "resp F")]["agreement"] == 1.0
    assert all(0 < r["margin"] <= 1 for r in got)
    reward = rows(export(db_url, "reward", tmp_path / "r.jsonl").path)
    assert [(r["chosen"], r["rejected"], r["margin"]) for r in reward] == [
        (r["chosen"], r["rejected"], r["margin"]) for r in got]


def test_conversational_rows_are_message_lists(db_url, fb, tmp_path):
    from trl.data_utils import is_conversational

    got = rows(export(db_url, "trl-conversational", tmp_path / "c.jsonl").path)
    first = got[0]
    assert is_conversational(first)
    # The served chat, system prompt included, is the prompt; the answers are assistant turns.
    assert [m["role"] for m in first["prompt"]] == ["system", "user", "assistant", "user"]
    assert first["chosen"] == [{"role": "assistant", "content": "resp A"}]
    assert got[1]["prompt"] == [{"role": "user", "content": "q2"}]  # no recorded chat: one user turn


def test_kto_labels_from_ratings_with_threshold(db_url, fb, tmp_path):
    got = rows(export(db_url, "kto", tmp_path / "k.jsonl").path)
    assert [(r["completion"], r["label"]) for r in got] == [("resp A", True), ("resp B", False), ("resp E", True)]
    assert got[0]["agreement"] == pytest.approx(2 / 3, abs=1e-6) and got[0]["n_raters"] == 3
    strict = rows(export(db_url, "kto", tmp_path / "k2.jsonl", kto_threshold=0.7).path)
    assert [(r["completion"], r["label"]) for r in strict] == [("resp A", False), ("resp B", False),
                                                               ("resp E", True), ("resp F", False)]
    with pytest.raises(Invalid, match="kto_threshold"):
        export(db_url, "kto", tmp_path / "k3.jsonl", kto_threshold=1.0)


def test_sft_from_corrected_responses_in_both_styles(db_url, fb, tmp_path):
    msgs = rows(export(db_url, "sft", tmp_path / "s.jsonl").path)
    assert [r["messages"][-1] for r in msgs] == [{"role": "assistant", "content": "better q1"},
                                                 {"role": "assistant", "content": "better q3"}]
    assert msgs[0]["messages"][0] == {"role": "system", "content": "Be brief."}
    assert [r["simulated"] for r in msgs] == [False, True]  # labelled from the correction's metadata
    pc = rows(export(db_url, "sft", tmp_path / "s2.jsonl", sft_style="prompt-completion").path)
    assert [(r["prompt"], r["completion"]) for r in pc] == [("user: hi\nassistant: hello\n\nq1", "better q1"),
                                                           ("q3", "better q3")]


def test_filters(db_url, fb, tmp_path):
    def pairs(**f):
        res = export(db_url, "trl-preference", tmp_path / "f.jsonl", filters=make_filters(**f))
        return sorted(r["chosen"] for r in rows(res.path))

    assert pairs(project="docs") == ["resp A", "resp C"]
    assert pairs(project="other") == ["resp E"]
    assert pairs(model="m", model_version="2") == ["resp E"]
    assert pairs(model="nope") == []
    assert pairs(min_agreement=0.9) == ["resp E"]
    assert pairs(min_raters=2) == ["resp A", "resp C"]
    # Only alice and bob: both prefer A and C, unanimously.
    res = export(db_url, "trl-preference", tmp_path / "ab.jsonl", filters=make_filters(raters=["alice", "bob"]))
    assert {r["chosen"]: r["agreement"] for r in rows(res.path)} == {"resp A": 1.0, "resp C": 1.0, "resp E": 1.0}
    future = datetime.now(timezone.utc) + timedelta(days=1)
    assert pairs(since=future) == [] and pairs(until=future) == ["resp A", "resp C", "resp E"]
    sft = export(db_url, "sft", tmp_path / "sp.jsonl", filters=make_filters(project="other"))
    assert [r["messages"][-1]["content"] for r in rows(sft.path)] == ["better q3"]
    meta = json.loads(res.meta_path.read_text())
    assert meta["filters"] == {"raters": ["alice", "bob"]} and meta["format"] == "trl-preference"
    with pytest.raises(NotFound, match="project"):
        pairs(project="missing")
    with pytest.raises(NotFound, match="zed"):
        pairs(raters=["zed"])
    with pytest.raises(Invalid, match="since"):
        make_filters(since=future, until=future - timedelta(hours=1))


@pytest.mark.parametrize("fmt", ["trl-preference", "trl-conversational", "kto", "sft", "reward"])
def test_outputs_are_byte_identical_when_rewritten_from_the_snapshot(sqlite_url, tmp_path, fmt):
    import datasets
    import pyarrow.parquet as pq

    fb = make_feedback(sqlite_url)
    first = {kind: export(sqlite_url, fmt, tmp_path / kind / "a", output=kind) for kind in ("jsonl", "parquet")}
    hf = export(sqlite_url, fmt, tmp_path / "hf-dataset" / "a", output="hf-dataset")
    snap = hf.snapshot_id
    assert all(r.snapshot_id == snap for r in first.values())
    FeedbackStore(sqlite_url).add_rating(fb["E"], 1, FeedbackStore(sqlite_url).rater("dave"))  # new feedback
    for kind in ("jsonl", "parquet", "hf-dataset"):
        again = write_snapshot(sqlite_url, snap, tmp_path / kind / "b", output=kind)
        a, b = tmp_path / kind / "a", tmp_path / kind / "b"
        files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file()) if a.is_dir() else [None]
        for f in files:
            assert (a / f if f else a).read_bytes() == (b / f if f else b).read_bytes(), (kind, f)
        meta = json.loads(again.meta_path.read_text())
        assert meta["snapshot_id"] == snap and meta["format"] == fmt and meta["n_rows"] == hf.n_rows
        assert meta["library_versions"]["pyarrow"] and "agreement" in meta and meta["output"] == kind
    table = pq.read_table(tmp_path / "parquet" / "a")
    ds = datasets.load_from_disk(str(tmp_path / "hf-dataset" / "a"))
    assert table.num_rows == ds.num_rows == hf.n_rows > 0
    assert ds.to_list() == table.to_pylist() == rows(tmp_path / "jsonl" / "a")


def test_bad_parameters_are_refused(db_url, fb, tmp_path):
    with pytest.raises(Invalid, match="format"):
        export(db_url, "dpo", tmp_path / "x.jsonl")
    with pytest.raises(Invalid, match="min_margin"):
        export(db_url, "reward", tmp_path / "x.jsonl", min_margin=2.0)
    with pytest.raises(Invalid, match="output"):
        export(db_url, "kto", tmp_path / "x.jsonl", output="csv")
    with pytest.raises(NotFound):
        write_snapshot(db_url, "fbs_0000", tmp_path / "y.jsonl")
    (tmp_path / "notds").mkdir()
    (tmp_path / "notds" / "keep.txt").write_text("mine")
    with pytest.raises(Invalid, match="not a datasets folder"):
        export(db_url, "kto", tmp_path / "notds", output="hf-dataset")
    assert (tmp_path / "notds" / "keep.txt").read_text() == "mine"


def test_cli_formats_filters_outputs_and_snapshot_rewrite(sqlite_url, tmp_path, capsys):
    import pyarrow.parquet as pq

    from llmops.cli.main import main

    make_feedback(sqlite_url)
    base = ["feedback", "export", "--db", sqlite_url]
    assert main([*base, "--format", "kto", "--out", str(tmp_path / "k.parquet"), "--project", "docs"]) == 0
    said = capsys.readouterr().out
    assert "wrote 2 kto rows" in said and "as parquet" in said
    assert pq.read_table(tmp_path / "k.parquet").column("label").to_pylist() == [True, False]
    assert main([*base, "--format", "trl-conversational", "--out", str(tmp_path / "c"), "--rater", "alice",
                 "--rater", "bob", "--min-agreement", "1"]) == 0
    assert "as hf-dataset" in capsys.readouterr().out and (tmp_path / "c" / "state.json").is_file()
    meta = json.loads((tmp_path / "c.meta.json").read_text())
    assert meta["filters"] == {"raters": ["alice", "bob"], "min_agreement": 1.0}
    assert main([*base, "--snapshot", meta["snapshot_id"], "--out", str(tmp_path / "again.jsonl")]) == 0
    assert len((tmp_path / "again.jsonl").read_text().splitlines()) == meta["n_rows"] == 3
    assert main([*base, "--format", "reward", "--out", str(tmp_path / "r.jsonl"), "--min-agreement", "2"]) == 2
    assert "min_agreement" in capsys.readouterr().err
    assert main([*base, "--format", "sft", "--out", str(tmp_path / "s.jsonl"), "--since", "not a date"]) == 2
    assert "since" in capsys.readouterr().err


def test_api_exports_any_format_with_filters_and_serves_the_same_bytes(sqlite_url, keys_sqlite, tmp_path):
    from fastapi.testclient import TestClient

    from llmops.feedback.api import create_app

    make_feedback(sqlite_url)
    admin = keys_sqlite.headers("admin")
    with TestClient(create_app(sqlite_url), raise_server_exceptions=False, base_url="http://localhost") as c:
        made = c.post("/v1/exports", json={"format": "kto", "filters": {"project": "docs", "min_raters": 3}},
                      headers=admin)
        assert made.status_code == 201, made.text
        snap = made.json()
        assert snap["format"] == "kto" and snap["n_rows"] == 2
        assert snap["params"]["filters"] == {"project": "docs", "min_raters": 3}
        jsonl = c.get(f"/v1/exports/{snap['snapshot_id']}/file", headers=admin)
        parquet = c.get(f"/v1/exports/{snap['snapshot_id']}/file", params={"as": "parquet"}, headers=admin)
        assert jsonl.status_code == parquet.status_code == 200
        for kind, body in (("jsonl", jsonl.content), ("parquet", parquet.content)):
            assert write_snapshot(sqlite_url, snap["snapshot_id"], tmp_path / f"s.{kind}").path.read_bytes() == body
        # Bad input is a 422 naming the field, never a 5xx.
        for body, field in (({"format": "dpo"}, "format"), ({"filters": {"min_agreement": 2}}, "min_agreement"),
                            ({"filters": {"since": "2026-02-01T00:00:00Z", "until": "2026-01-01T00:00:00Z"}},
                             "since"), ({"filters": {"nope": 1}}, "nope"), ({"kto_threshold": 0}, "kto_threshold")):
            r = c.post("/v1/exports", json=body, headers=admin)
            assert r.status_code == 422 and field in r.text, (body, r.status_code, r.text)
        assert c.post("/v1/exports", json={"filters": {"project": "missing"}}, headers=admin).status_code == 404
        assert c.post("/v1/exports", json={}, headers=keys_sqlite.headers("rater")).status_code == 403


def test_time_range_splits_feedback_at_an_instant(db_url, tmp_path):
    import time

    s = FeedbackStore(db_url)
    alice = s.rater("alice")
    early = s.create_item("early", [{"text": "good"}, {"text": "bad"}]).response_ids
    s.add_rating(early[0], 5, alice)
    s.add_rating(early[1], 1, alice)
    time.sleep(0.05)
    cut = datetime.now(timezone.utc)
    time.sleep(0.05)
    late = s.create_item("late", [{"text": "fine"}, {"text": "poor"}]).response_ids
    s.add_rating(late[0], 4, alice)
    s.add_rating(late[1], 2, alice)

    def prompts(**f):
        return [r["prompt"] for r in rows(export(db_url, "kto", tmp_path / "t.jsonl", filters=make_filters(**f)).path)]

    assert prompts(until=cut) == ["early", "early"]
    assert prompts(since=cut) == ["late", "late"]
    # The same instant written with another offset selects the same feedback.
    assert prompts(since=cut.astimezone(timezone(timedelta(hours=5)))) == ["late", "late"]
    assert prompts(since=cut.replace(tzinfo=None)) == ["late", "late"]  # naive = UTC


def test_an_empty_export_loads_back_in_every_output(sqlite_url, tmp_path):
    import datasets
    import pyarrow.parquet as pq

    FeedbackStore(sqlite_url).rater("nobody")  # a migrated store without feedback
    for fmt in ("trl-conversational", "sft"):
        assert export(sqlite_url, fmt, tmp_path / f"{fmt}.jsonl").path.read_text() == ""
        table = pq.read_table(export(sqlite_url, fmt, tmp_path / f"{fmt}.parquet").path)
        ds = datasets.load_from_disk(str(export(sqlite_url, fmt, tmp_path / fmt, output="hf-dataset").path))
        assert table.num_rows == ds.num_rows == 0 and ds.column_names == table.column_names

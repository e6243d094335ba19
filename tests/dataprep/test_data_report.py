"""`llmops data inspect --html`, `data dedup`, `data contamination`, `eval run --exclude-contaminated`,
and the contamination record of a training run — each on planted duplicates and a planted leak."""

from __future__ import annotations

import json

from dataprep.conftest import LEAKED, write_jsonl
from llmops.cli.main import main
from llmops.data.contamination import check_contamination
from llmops.data.dedup import find_duplicates


def test_minhash_finds_planted_near_and_exact_duplicates(train_rows):
    rep = find_duplicates(train_rows)
    assert [0, 32] in rep.exact_groups  # case/whitespace variant
    assert [30, 31] in rep.near_groups  # one word changed in a 30-word record
    assert rep.drop == {31, 32}


def test_inspect_html_report_shows_duplicates_problems_and_histograms(tmp_path, train_rows, capsys):
    data = write_jsonl(tmp_path / "train.jsonl", train_rows)
    html_path = tmp_path / "report" / "data.html"
    assert main(["data", "inspect", str(data), "--html", str(html_path), "--max-length", "32", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["duplicates"]["exact_duplicates"] == 1 and report["duplicates"]["near_duplicates"] == 1
    assert report["problems"]["mojibake (UTF-8 read as Latin-1)"]["examples"] == [34]
    assert report["problems"]["whitespace-only field"]["count"] == 1
    assert report["roles"]["messages_per_role"] == {"user": 35, "assistant": 35}
    assert report["charset"]["dominant_script"] == "Latin (ASCII)" and report["truncated_rate"] > 0
    page = html_path.read_text()
    assert page.count("data:image/png;base64,") == 2 and "<script" not in page and "http" not in page
    assert "records 31, 32" in page and "validate the types of all values" in page  # the near-dup group, 1-based
    assert "mojibake" in page


def test_dedup_removes_planted_duplicates_and_writes_a_report(tmp_path, train_rows, capsys):
    src = write_jsonl(tmp_path / "train.jsonl", train_rows)
    out = tmp_path / "clean.jsonl"
    assert main(["data", "dedup", str(src), "--out", str(out)]) == 0
    summary = json.loads(capsys.readouterr().out)
    kept = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(kept) == len(train_rows) - 2 == summary["kept"]
    assert train_rows[31] not in kept and train_rows[32] not in kept and train_rows[30] in kept
    assert json.loads((tmp_path / "clean.jsonl.dedup.json").read_text())["near_groups"] == [[30, 31]]


def test_contamination_lists_the_planted_item_and_exits_1(tmp_path, train_rows, suite_file, capsys):
    data = write_jsonl(tmp_path / "train.jsonl", train_rows)
    assert main(["data", "contamination", "--train", str(data), "--eval", str(suite_file), "--json"]) == 1
    doc = json.loads(capsys.readouterr().out)[0]
    assert doc["contaminated_indices"] == [1] and doc["items"][0]["text"] == LEAKED
    clean = write_jsonl(tmp_path / "clean.jsonl", train_rows[:30])
    assert main(["data", "contamination", "--train", str(clean), "--eval", str(suite_file)]) == 0
    assert "0 of 3 items contaminated" in capsys.readouterr().out


def test_short_items_are_compared_whole():
    rep = check_contamination([{"text": "a b c"}], [{"q": "A  b c"}, {"q": "a b d"}], n=8)
    assert rep.contaminated_indices == [0]


def test_eval_exclude_contaminated_drops_the_leaked_item(tmp_path, train_rows, suite_file, capsys):
    data = write_jsonl(tmp_path / "train.jsonl", train_rows)
    assert main(["eval", "run", "--model", "builtin:tiny", "--suite", str(suite_file), "--out", str(tmp_path / "e"),
                 "--exclude-contaminated", str(data), "--no-cache", "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["n_samples"] == 2
    assert res["provenance"]["decontamination"]["excluded"] == [1]
    texts = [json.loads(line)["text"] for line in (tmp_path / "e" / "samples.jsonl").read_text().splitlines()]
    assert LEAKED not in texts


def test_training_manifest_records_the_contamination_check(tmp_path, train_rows, suite_file, capsys):
    import yaml

    data = write_jsonl(tmp_path / "train.jsonl", train_rows)
    recipe = {"recipe": "sft", "model": {"base": "builtin:tiny"},
              "data": {"train": str(data), "max_length": 32, "validation_split": 0.0,
                       "contamination_suites": [str(suite_file)]},
              "train": {"max_steps": 1, "batch_size": 2, "log_every": 1}, "output": {"dir": str(tmp_path / "run")}}
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(recipe))
    assert main(["train", str(tmp_path / "r.yaml")]) == 0
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    check = manifest["contamination"]
    assert check["status"] == "checked" and check["contaminated_total"] == 1
    assert check["suites"]["leak"]["contaminated_indices"] == [1]

"""Loaders for each file type, format detection, the built-in task and fingerprints."""

from __future__ import annotations

import json

import pytest

from llmops.data import dataset_fingerprint, detect_format, load_records, preference_messages, to_messages
from llmops.data.builtin_tasks import SPLITS
from llmops.errors import DataError

ROWS = [
    {"prompt": "Say hi.", "completion": "Hi."},
    {"prompt": "Say bye, politely.", "completion": "Goodbye."},
    {"prompt": "Count to two", "completion": "1, 2"},
]


def _write(tmp_path, kind: str):
    if kind == "jsonl":
        p = tmp_path / "d.jsonl"
        p.write_text("\n".join(json.dumps(r) for r in ROWS) + "\n\n")
    elif kind == "json":
        p = tmp_path / "d.json"
        p.write_text(json.dumps(ROWS))
    elif kind == "csv":
        import csv

        p = tmp_path / "d.csv"
        with p.open("w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=["prompt", "completion"])
            w.writeheader()
            w.writerows(ROWS)
    elif kind == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        p = tmp_path / "d.parquet"
        pq.write_table(pa.Table.from_pylist(ROWS), p)
    elif kind == "datasets":
        from datasets import Dataset

        p = tmp_path / "ds"
        Dataset.from_list(ROWS).save_to_disk(str(p))
    elif kind == "datasetdict":
        from datasets import Dataset, DatasetDict

        p = tmp_path / "dd"
        DatasetDict({"train": Dataset.from_list(ROWS), "test": Dataset.from_list(ROWS[:1])}).save_to_disk(str(p))
    return p


@pytest.mark.parametrize("kind", ["jsonl", "json", "csv", "parquet", "datasets", "datasetdict"])
def test_each_file_type_loads_the_same_records(tmp_path, kind):
    path = _write(tmp_path, kind)
    assert load_records(path) == ROWS
    assert load_records(str(path), limit=2) == ROWS[:2]
    assert dataset_fingerprint(load_records(path)) == dataset_fingerprint(ROWS)


def test_datasetdict_split(tmp_path):
    path = _write(tmp_path, "datasetdict")
    assert load_records(path, split="test") == ROWS[:1]
    with pytest.raises(DataError, match="no split `validation`"):
        load_records(path, split="validation")


def test_bad_jsonl_line_names_file_and_line(tmp_path):
    p = tmp_path / "bad.jsonl"
    p.write_text('{"prompt": "a", "completion": "b"}\n\n{"prompt": "a", "completion": }\n')
    with pytest.raises(DataError, match=rf"{p}:3: invalid JSON"):
        load_records(p)
    p.write_text('{"prompt": "a", "completion": "b"}\n[1, 2]\n')
    with pytest.raises(DataError, match=rf"{p}:2: expected a JSON object, got list"):
        load_records(p)


def test_bad_csv_row_and_json_item_are_located(tmp_path):
    p = tmp_path / "bad.csv"
    p.write_text("prompt,completion\na,b\nonly-one-field\n")
    with pytest.raises(DataError, match=rf"{p}:3: expected 2 fields"):
        load_records(p)
    j = tmp_path / "bad.json"
    j.write_text(json.dumps([{"prompt": "a", "completion": "b"}, "oops"]))
    with pytest.raises(DataError, match="item 1: expected an object"):
        load_records(j)


@pytest.mark.parametrize(
    "name,content,match",
    [("x.txt", "hello", "unsupported file type `.txt`"), ("e.jsonl", "\n\n", "no records")],
)
def test_unusable_files(tmp_path, name, content, match):
    p = tmp_path / name
    p.write_text(content)
    with pytest.raises(DataError, match=match):
        load_records(p)


def test_missing_path_and_unknown_builtin(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        load_records(tmp_path / "nope.jsonl")
    with pytest.raises(DataError, match="unknown built-in dataset `builtin:nope`"):
        load_records("builtin:nope")
    with pytest.raises(DataError, match="no split `dev`"):
        load_records("builtin:docstrings", split="dev")


def test_builtin_docstrings_splits_are_disjoint_deterministic_and_real():
    splits = {s: load_records("builtin:docstrings", split=s) for s in SPLITS}
    assert load_records("builtin:docstrings") == splits["train"]
    sources = {s: {r["source"] for r in rows} for s, rows in splits.items()}
    assert not (sources["train"] & sources["test"]) and not (sources["train"] & sources["validation"])
    assert len(splits["train"]) > 200 and len(splits["test"]) > 20 and len(splits["validation"]) > 20
    for row in splits["test"]:
        assert set(row) == {"prompt", "completion", "source"}
        assert row["prompt"].replace("\n", " ").replace("  ", " ").startswith(row["completion"][:10])
        assert row["completion"].endswith((".", "!", "?"))
    assert detect_format(splits["train"]) == "prompt_completion"


def test_task_modules_are_disjoint_from_pretraining():
    from llmops.data.corpus import PRETRAIN_MODULES, TASK_MODULES, pretrain_docstrings

    top = lambda mods: {m.split(".")[0] for m in mods}  # noqa: E731
    assert not top(PRETRAIN_MODULES) & top(TASK_MODULES)
    pretrain_texts = {d.text for d in pretrain_docstrings()}
    for split in SPLITS:
        for row in load_records("builtin:docstrings", split=split):
            assert row["prompt"] not in pretrain_texts
            assert row["source"].split(".")[0] in top(TASK_MODULES)


def test_detect_format_and_messages_for_every_variant():
    assert detect_format(ROWS) == "prompt_completion"
    assert detect_format([{"text": "a"}]) == "text"
    chat = {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}
    assert detect_format([chat]) == "chat" and to_messages(chat) == chat["messages"]
    assert to_messages(ROWS[0]) == [{"role": "user", "content": "Say hi."}, {"role": "assistant", "content": "Hi."}]
    # TRL conversational prompt-completion
    conv = {"prompt": [{"role": "user", "content": "q"}], "completion": [{"role": "assistant", "content": "a"}]}
    assert to_messages(conv) == chat["messages"]
    # preference: explicit prompt, and TRL's implicit-prompt conversational form
    explicit = {"prompt": "q", "chosen": "good", "rejected": "bad"}
    implicit = {
        "chosen": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "good"}],
        "rejected": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "bad"}],
    }
    assert detect_format([explicit, implicit]) == "preference"
    assert preference_messages(explicit) == preference_messages(implicit)
    p, c, r = preference_messages(implicit)
    assert p == [{"role": "user", "content": "q"}] and c[0]["content"] == "good" and r[0]["content"] == "bad"
    with pytest.raises(DataError, match="record 2: format text, but record 1 is prompt_completion"):
        detect_format([ROWS[0], {"text": "x"}])
    with pytest.raises(DataError, match=r"cannot tell the format from columns \['foo'\]"):
        detect_format([{"foo": 1}])


def test_fingerprint_is_key_order_independent_and_content_sensitive():
    a = [{"prompt": "x", "completion": "y"}]
    b = [{"completion": "y", "prompt": "x"}]
    assert dataset_fingerprint(a) == dataset_fingerprint(b)
    assert dataset_fingerprint(a) != dataset_fingerprint([{"prompt": "x", "completion": "z"}])
    assert dataset_fingerprint(a + a) != dataset_fingerprint(a)

"""`llmops models list|path` and `llmops data inspect` end to end through the CLI entry point."""

from __future__ import annotations

import json

from llmops.cli.main import main


def test_models_list_shows_builtins_and_cache_state(tiny_dir, capsys):
    assert main(["models", "list", "--json"]) == 0
    rows = {r["ref"]: r for r in json.loads(capsys.readouterr().out) if r["ref"]}
    assert set(rows) >= {"builtin:tiny", "builtin:tiny-teacher"}
    tiny = rows["builtin:tiny"]
    assert tiny["cached"] and tiny["path"] == str(tiny_dir) and tiny["size_bytes"] > 1_000_000
    assert main(["models", "list"]) == 0
    assert "builtin:tiny " in capsys.readouterr().out


def test_models_path_prints_the_directory(tiny_dir, capsys):
    assert main(["models", "path", "builtin:tiny"]) == 0
    assert capsys.readouterr().out.strip() == str(tiny_dir)


def test_data_inspect_reports_counts_lengths_duplicates_truncation(tmp_path, tiny_dir, capsys):
    rows = [{"prompt": "Say hi.", "completion": "Hi."}] * 2 + [
        {"prompt": "word " * 300, "completion": "Long."},
        {"prompt": "Count to three.", "completion": "One, two, three."},
    ]
    p = tmp_path / "d.jsonl"
    p.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert main(["data", "inspect", str(p), "--max-length", "64", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["n_records"] == 4 and report["format"] == "prompt_completion"
    assert report["duplicate_rate"] == 0.25
    assert report["truncated_rate"] == 0.25 and report["dropped_rate"] == 0.25
    assert report["tokens"]["max"] > 300 > report["tokens"]["p50"]
    assert main(["data", "inspect", str(p), "--max-length", "64"]) == 0
    text = capsys.readouterr().out
    assert "p90" in text and "duplicates    25.00%" in text


def test_data_inspect_bad_input_exits_2(tmp_path, capsys):
    p = tmp_path / "bad.jsonl"
    p.write_text('{"prompt": "a", "completion": "b"}\nnot json\n')
    assert main(["data", "inspect", str(p)]) == 2
    err = capsys.readouterr().err
    assert f"{p}:2: invalid JSON" in err and "Traceback" not in err

"""`llmops feedback keys|import|export` as a user runs them."""

from __future__ import annotations

import json

from llmops.cli.main import main


def test_keys_import_export_cli(sqlite_url, tmp_path, capsys):
    assert main(["feedback", "keys", "create", "--role", "rater", "--name", "alice", "--db", sqlite_url]) == 0
    token = capsys.readouterr().out.strip()
    assert token.startswith("llmf_")
    key_id = token.split("_")[1]
    assert main(["feedback", "keys", "list", "--db", sqlite_url]) == 0
    listing = capsys.readouterr().out
    assert key_id in listing and "alice" in listing and token.split("_")[2] not in listing
    assert main(["feedback", "keys", "revoke", key_id, "--db", sqlite_url]) == 0
    assert main(["feedback", "keys", "list", "--db", sqlite_url]) == 0
    assert "revoked" in capsys.readouterr().out
    assert main(["feedback", "keys", "revoke", "ffff", "--db", sqlite_url]) == 2
    assert "no API key" in capsys.readouterr().err

    items = tmp_path / "items.jsonl"
    items.write_text(json.dumps({"prompt": "p", "responses": [{"text": "a"}, {"text": "b"}]}) + "\n"
                     + json.dumps({"prompt": "q", "responses": []}) + "\n")
    assert main(["feedback", "import", str(items), "--db", sqlite_url]) == 2
    assert f"{items}:2: responses" in capsys.readouterr().err  # names file:line and field, stores nothing
    items.write_text(json.dumps({"prompt": "p", "responses": [{"text": "a"}, {"text": "b"}]}) + "\n")
    assert main(["feedback", "import", str(items), "--db", sqlite_url]) == 0

    from llmops.feedback.store import FeedbackStore

    store = FeedbackStore(sqlite_url)
    a, b = store.get_item(1).responses
    store.add_rating(a.id, 5, store.rater("bob"))
    store.add_rating(b.id, 1, store.rater("bob"))
    out = tmp_path / "prefs.jsonl"
    assert main(["feedback", "export", "--out", str(out), "--strategy", "all_pairs", "--db", sqlite_url]) == 0
    assert "wrote 1 trl-preference rows" in capsys.readouterr().out
    row = json.loads(out.read_text())
    assert (row["chosen"], row["rejected"], row["margin"]) == ("a", "b", 1.0)  # 5 vs 1: the whole 1-5 scale
    assert json.loads((tmp_path / "prefs.jsonl.meta.json").read_text())["snapshot_id"].startswith("fbs_")

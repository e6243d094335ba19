"""`llmops reward score` on (prompt, response) rows, and its errors."""

from __future__ import annotations

import json

import pytest

from llmops.cli.main import main as cli
from llmops.preference.reward_model import RewardScorer

from .helpers import tiny_llama, word_tokenizer


@pytest.fixture(scope="module")
def reward_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("rm") / "model"
    tok = word_tokenizer()
    model = tiny_llama(seed=3, num_labels=1)
    model.config.pad_token_id = tok.pad_token_id
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path


def test_reward_score_responses_writes_scores_matching_the_python_api(reward_dir, tmp_path, capsys):
    rows = [
        {"prompt": "why is sky blue", "response": "because light scatters"},
        {"prompt": "why is sky blue", "completion": "random words"},
        {"prompt": [{"role": "user", "content": "question"}], "response": "good answer"},
    ]
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "out.jsonl"
    assert cli(["reward", "score", "--model", str(reward_dir), "--input", str(src), "--output", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["kind"] == "responses" and summary["rows"] == 3
    scored = [json.loads(x) for x in out.read_text().splitlines()]
    expected = RewardScorer(str(reward_dir)).score(
        [r["prompt"] for r in rows], [r.get("response", r.get("completion")) for r in rows], batch_size=1
    )
    assert [r["score"] for r in scored] == pytest.approx(expected, abs=1e-5)  # batching/padding does not matter
    assert len({round(s, 6) for s in expected}) == 3


def test_reward_score_bad_rows_exit_2_naming_the_row(reward_dir, tmp_path, capsys):
    src = tmp_path / "bad.jsonl"
    src.write_text(json.dumps({"prompt": "a", "response": "b"}) + "\n" + json.dumps({"prompt": "a"}) + "\n")
    assert cli(["reward", "score", "--model", str(reward_dir), "--input", str(src)]) == 2
    assert "row 2" in capsys.readouterr().err


def test_old_rm_name_still_scores_but_is_unlisted_and_warns(reward_dir, tmp_path, capsys):
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps({"prompt": "a", "response": "b"}) + "\n")
    assert cli(["rm", "score", "--model", str(reward_dir), "--input", str(src), "--json"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["rows"] == 1
    assert "deprecated" in captured.err and "llmops reward" in captured.err
    from llmops.cli.main import build_parser

    listing = build_parser().format_help()
    assert "reward" in listing and " rm " not in listing and "SUPPRESS" not in listing

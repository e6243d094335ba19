"""Output-side monitor: response length, empty and refusal rate, rating distribution per model version."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

from llmops.cli.main import main
from llmops.monitor.outputs import is_refusal, output_report


def _seed(db_url: str) -> None:
    from llmops.feedback.store import FeedbackStore
    from llmops.feedback.tables import Item, Rater, Rating, Response

    with FeedbackStore(db_url).transaction() as s:
        rater = Rater(name="r1")
        s.add(rater)
        s.flush()
        texts = {"docs/1": ["Return the sum.", "Parse a path into parts.", "", "Compute it."],
                 "docs/2": ["I'm sorry, I can't help with that.", "As an AI, I cannot.", "Return the sum of a and b."]}
        for version, answers in texts.items():
            for i, text in enumerate(answers):
                item = Item(prompt=f"p{i}", meta={})
                s.add(item)
                s.flush()
                resp = Response(item_id=item.id, position=0, text=text, model_ref=f"registry:{version}",
                                model_version=version)
                s.add(resp)
                s.flush()
                s.add(Rating(response_id=resp.id, item_id=item.id, rater_id=rater.id, score=5 if version == "docs/1"
                             else 1 + i, scale_min=1, scale_max=5))


def test_refusal_heuristic():
    assert is_refusal("  I'm sorry, but I can't do that") and is_refusal("As an AI language model")
    assert not is_refusal("Sorry state of affairs: return None.") and not is_refusal("Return the sum.")


def test_output_report_per_version_and_cli(sqlite_url, capsys, tmp_path):
    _seed(sqlite_url)
    rows = {r["model_version"]: r for r in output_report(sqlite_url)}
    v1, v2 = rows["docs/1"], rows["docs/2"]
    assert v1["n_responses"] == 4 and v1["empty_rate"] == 0.25 and v1["refusal_rate"] == 0.0
    assert v2["refusal_rate"] == 2 / 3 and v2["empty_rate"] == 0.0
    assert v1["rating_distribution"] == {"5": 1.0} and v2["rating_distribution"] == {"1": 1 / 3, "2": 1 / 3, "3": 1 / 3}
    assert v1["mean_words"] == (3 + 5 + 0 + 2) / 4
    future = datetime.now(timezone.utc) + timedelta(days=1)
    assert output_report(sqlite_url, since=future) == []
    prom = tmp_path / "out.prom"
    assert main(["monitor", "outputs", "--db", sqlite_url, "--json", "--prometheus-textfile", str(prom)]) == 0
    assert {r["model_version"] for r in json.loads(capsys.readouterr().out)} == {"docs/1", "docs/2"}
    assert 'llmops_output_refusal_rate{model_version="docs/2"} 0.6666' in prom.read_text()


def test_output_rule_fires_on_refusals(sqlite_url, tmp_path):
    from llmops.monitor.alerts import AlertEngine
    from llmops.monitor.rules import load_rules

    _seed(sqlite_url)
    (tmp_path / "r.yaml").write_text("rules:\n  - {name: refusals, kind: output, model_version: docs/2, "
                                     "min_responses: 3, trigger: 0.5, clear: 0.1}\n")
    (outcome,) = AlertEngine(load_rules(tmp_path / "r.yaml"), sqlite_url).check()
    assert outcome.event == "fired" and outcome.value == 2 / 3

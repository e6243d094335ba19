"""`llmops serve` routes what it records into rating projects: an explicit --feedback-project, else the
projects' routing rules (model alias, sampling), else no project (no model needed: the Recorder is driven
directly)."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmops.eval.backends.base import Prompt
from llmops.serve.generation import Choice, GenRequest, GenResult
from llmops.serve.host import LoadedModel


def _record(db_url: str, project: str | None, prompt: str, served_ref: str = "registry:docs@production") -> int:
    from llmops.serve.recording import Recorder

    model = LoadedModel(backend=None, served_ref=served_ref, resolved_ref="registry:docs/3", version="docs/3",
                        sha256="ab" * 32, path=Path("/nonexistent"))
    req = GenRequest(kind="completion", prompts=[prompt], messages=None, n=2, max_tokens=None, temperature=0.7,
                     top_p=1.0, stop=(), seed=None)
    req.rendered = [Prompt(prompt, add_special_tokens=False)]
    result = GenResult(model, [[Choice("one", "stop", 1), Choice("two", "stop", 1)]], [3], 4, 7)
    item_ids, _ = Recorder(db_url, project=project).record(req, result, "cmpl-1", None)
    return item_ids[0]


def _where(db_url: str, item_id: int):
    from llmops.db import session_factory
    from llmops.feedback.tables import Item, Project, ProjectItem

    with session_factory(db_url)() as s:
        row = s.get(ProjectItem, item_id)
        item = s.get(Item, item_id)
        return (None if row is None else (s.get(Project, row.project_id).name, row.routed_by),
                (item.scale_min, item.scale_max))


def test_recorded_generations_go_to_the_named_project_or_by_rules(db_url):
    from llmops.feedback.project_store import ProjectStore

    ps = ProjectStore(db_url)
    rating = {"type": "rating", "name": "quality", "scale_min": 1, "scale_max": 7}
    ps.create_project({"name": "served", "overlap_k": 3, "questions": [rating]})
    ps.create_project({"name": "prod-sample", "overlap_k": 1, "questions": [{"type": "preference", "name": "p"}],
                       "routing": {"models": ["*@production"], "sample_rate": 0.5}})
    explicit = _record(db_url, "served", "What is 2+2?")
    assert _where(db_url, explicit) == (("served", "explicit"), (1, 7))  # the project's scale
    staged = [_record(db_url, None, f"q{i}", served_ref="registry:docs@staging") for i in range(5)]
    assert all(_where(db_url, i)[0] is None for i in staged)  # no rule matches, no default: no rater queue
    prod = [_record(db_url, None, f"question {i}") for i in range(40)]
    routed = [i for i in prod if _where(db_url, i)[0] == ("prod-sample", "rule")]
    assert 8 <= len(routed) <= 32  # about half, by content hash
    again = [_record(db_url, None, f"question {i}") for i in range(40)]
    assert [_where(db_url, i)[0] for i in again] == [_where(db_url, i)[0] for i in prod]  # reproducible sampling
    # simulated raters work through the served items with k = 3
    raters = [ps.rater(f"sim-{i}") for i in range(4)]
    answered = []
    for r in raters:
        item = ps.next_item("served", r)
        if item is None:
            continue
        out = ps.answer("served", item.id, r, {"ratings": [{"response_id": x.id, "score": 5} for x in item.responses]})
        answered.append(out.complete)
    assert answered == [True, True, True]  # the fourth rater finds nothing: k = 3
    assert ps.progress("served").n_complete == 1


def test_serve_refuses_an_unknown_project_before_loading_the_model(sqlite_url, capsys):
    from llmops.cli.main import main
    from llmops.db import upgrade

    upgrade(sqlite_url)
    assert main(["serve", "--model", "builtin:does-not-matter", "--db", sqlite_url, "--feedback-project", "nope"]) == 2
    assert "no feedback project named 'nope'" in capsys.readouterr().err


@pytest.mark.parametrize("flag", ["--feedback-project"])
def test_serve_cli_documents_the_flag(flag, capsys):
    from llmops.cli.main import main

    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    assert flag in capsys.readouterr().out

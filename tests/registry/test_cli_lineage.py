"""`llmops registry` commands end to end (in-process) and lineage exports."""

from __future__ import annotations

import json

from llmops.cli.main import main
from llmops.registry import api
from llmops.registry.lineage import build_graph, to_dot, to_html, to_mermaid

from .helpers import make_eval_dir, make_key, make_model_dir


def _run(capsys, *argv) -> tuple[int, str]:
    rc = main(list(argv))
    return rc, capsys.readouterr().out


def test_cli_register_show_alias_diff_list(sqlite_url, tmp_path, capsys, monkeypatch):
    rc = main(["registry", "register", "docs", str(tmp_path), "--db", sqlite_url])
    assert rc == 2 and "LLMOPS_API_KEY" in capsys.readouterr().err  # writes are never anonymous
    monkeypatch.setenv("LLMOPS_API_KEY", make_key(sqlite_url, "service", "ci-bot"))
    a = make_model_dir(tmp_path / "a", "one")
    b = make_model_dir(tmp_path / "b", "two")
    (b / "extra.json").write_text("{}")
    lin = tmp_path / "lin.json"
    lin.write_text(json.dumps({"base_model_ref": "builtin:tiny", "run_id": "run-1"}))
    rc, out = _run(capsys, "registry", "register", "docs", str(a), "--lineage", str(lin), "--tag", "team=nlp",
                   "--db", sqlite_url, "--json")
    assert rc == 0 and json.loads(out)["version"] == 1
    lin.write_text(json.dumps({"parent_version": 1, "run_id": "run-2"}))
    _run(capsys, "registry", "register", "docs", str(b), "--lineage", str(lin), "--db", sqlite_url)
    v2 = api.get_version("docs", 2, db_url=sqlite_url)
    assert v2.created_by.startswith("key:") and v2.created_by.endswith(":ci-bot")
    ev = make_eval_dir(tmp_path / "ev", "docstrings", {"rougeL": 0.3}, model_hash=v2.sha256)
    rc, _ = _run(capsys, "registry", "attach-eval", "docs/2", str(ev), "--db", sqlite_url)
    assert rc == 0
    rc, out = _run(capsys, "registry", "alias", "docs", "production", "2", "--reason", "go", "--db", sqlite_url)
    assert rc == 0 and "None -> 2" in out
    rc, out = _run(capsys, "registry", "show", "docs@production", "--verify", "--db", sqlite_url, "--json")
    shown = json.loads(out)
    assert rc == 0 and shown["version"] == 2 and shown["verified"] and shown["evals"][0]["suite"] == "docstrings"
    rc, out = _run(capsys, "registry", "diff", "docs", "1", "@production", "--db", sqlite_url, "--json")
    diff = json.loads(out)
    assert diff["files"] == {"added": ["extra.json"], "removed": [], "changed": ["config.json", "model.safetensors"]}
    assert diff["lineage"]["run_id"] == ["run-1", "run-2"] and diff["tags"]["team"] == ["nlp", None]
    rc, out = _run(capsys, "registry", "list", "--db", sqlite_url, "--json")
    assert json.loads(out)[0]["aliases"] == {"production": 2}
    rc, out = _run(capsys, "registry", "alias", "docs", "--history", "--db", sqlite_url, "--json")
    assert [e["to_version"] for e in json.loads(out)] == [2]
    rc, out = _run(capsys, "registry", "lineage", "docs", "--format", "dot", "--db", sqlite_url)
    assert "digraph lineage" in out and "fine-tuned" in out
    assert main(["registry", "show", "docs/9", "--db", sqlite_url]) == 2
    assert "no version 9" in capsys.readouterr().err


def test_lineage_graph_exports(sqlite_url, tmp_path):
    lineage = {"base_model_ref": "builtin:tiny", "base_model_hash": "f" * 64, "run_id": "r1",
               "dataset_fingerprints": {"train": "a" * 64}, "feedback_snapshot_id": "snap-7", "recipe_hash": "c" * 64}
    api.register_version("docs", make_model_dir(tmp_path / "a"), lineage=lineage, db_url=sqlite_url)
    api.register_version("docs", make_model_dir(tmp_path / "b"), lineage={"parent_version": 1}, db_url=sqlite_url)
    api.set_alias("docs", "production", 2, db_url=sqlite_url)
    g = build_graph(api.list_versions("docs", db_url=sqlite_url))
    kinds = sorted(n["kind"] for n in g.nodes.values())
    assert kinds == ["base", "data", "feedback", "run", "version", "version"]
    labels = {(g.nodes[s]["label"].split("\n")[0], g.nodes[d]["label"], lab) for s, d, lab in g.edges}
    assert ("docs/1", "docs/2 [production]", "fine-tuned") in labels
    assert ("builtin:tiny", "docs/1", "base") in labels
    mermaid = to_mermaid(g)
    assert mermaid.startswith("graph LR") and mermaid.count("-->") == len(g.edges) == 5
    assert to_dot(g).count("->") == 5
    page = to_html(g, "docs <lineage>")
    assert "<svg" in page and "docs &lt;lineage&gt;" in page and "http://" not in page.replace(
        'xmlns="http://www.w3.org/2000/svg"', "")

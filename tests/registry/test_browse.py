"""Keyset pages of the registry (`llmops.registry.browse`): the CLI and the web UI read through them."""

from __future__ import annotations

import json

import pytest

from llmops.cli.main import main
from llmops.registry import api, browse
from llmops.registry.lineage import build_graph, to_svg

from .helpers import make_eval_dir, make_model_dir


def _register(sqlite_url, tmp_path, name: str, n: int) -> None:
    for i in range(n):
        api.register_version(name, make_model_dir(tmp_path / f"{name}{i}", f"w{i}"),
                             lineage={"parent_version": i} if i else {"base_model_ref": "builtin:tiny"},
                             db_url=sqlite_url)


def test_pages_walk_every_row_once(sqlite_url, tmp_path):
    _register(sqlite_url, tmp_path, "alpha", 7)
    _register(sqlite_url, tmp_path, "beta", 1)
    store = api.get_store(sqlite_url)
    seen, cursor = [], None
    while True:
        page = browse.versions_page(store, "alpha", limit=3, before=cursor)
        seen += [v.version for v in page.items]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == [7, 6, 5, 4, 3, 2, 1]
    first = browse.models_page(store, limit=1)
    assert [m.name for m in first.items] == ["alpha"] and first.items[0].n_versions == 7
    second = browse.models_page(store, limit=1, after=first.next_cursor)
    assert [m.name for m in second.items] == ["beta"] and second.next_cursor is None
    for i in range(4):
        api.set_alias("alpha", "staging", i + 1, db_url=sqlite_url, reason=f"r{i}")
    events = browse.alias_events_page(store, "alpha", limit=3)
    assert [e.to_version for e in events.items] == [4, 3, 2] and events.next_cursor is not None
    rest = browse.alias_events_page(store, "alpha", limit=3, before=events.next_cursor)
    assert [e.to_version for e in rest.items] == [1] and rest.next_cursor is None
    with pytest.raises(ValueError, match="limit"):
        browse.versions_page(store, "alpha", limit=0)


def test_metric_rows_carry_intervals(sqlite_url, tmp_path):
    _register(sqlite_url, tmp_path, "m", 1)
    mv = api.get_version("m", 1, db_url=sqlite_url)
    ev = make_eval_dir(tmp_path / "ev", "suite", {"acc": 0.5}, model_hash=mv.sha256)
    data = json.loads((ev / "results.json").read_text())
    data["metrics"]["acc"] = {"score": 0.5, "ci_low": 0.4, "ci_high": 0.6, "n": 40}
    (ev / "results.json").write_text(json.dumps(data))
    api.attach_eval("m", 1, ev, db_url=sqlite_url)
    rows = browse.version_detail(api.get_store(sqlite_url), "m", alias="latest")["metrics"]
    assert [(r["metric"], r["score"], r["ci_low"], r["ci_high"], r["n"]) for r in rows] == [("acc", 0.5, 0.4, 0.6, 40)]


def test_cli_list_pages_and_lineage_links(sqlite_url, tmp_path, capsys):
    _register(sqlite_url, tmp_path, "gamma", 3)
    assert main(["registry", "list", "gamma", "--limit", "2", "--db", sqlite_url, "--json"]) == 0
    captured = capsys.readouterr()
    assert [v["version"] for v in json.loads(captured.out)] == [3, 2] and "--after 2" in captured.err
    assert main(["registry", "list", "gamma", "--limit", "2", "--after", "2", "--db", sqlite_url, "--json"]) == 0
    assert [v["version"] for v in json.loads(capsys.readouterr().out)] == [1]
    assert main(["registry", "list", "gamma", "--db", sqlite_url, "--json"]) == 0
    assert [v["version"] for v in json.loads(capsys.readouterr().out)] == [1, 2, 3]
    svg = to_svg(build_graph(api.list_versions("gamma", db_url=sqlite_url)),
                 href=lambda nid, n: f"/v/{n['label']}" if n["kind"] == "version" else None)
    assert svg.count('<a href="/v/gamma/') == 3 and "builtin:tiny" in svg

"""Evaluation pages over a real `llmops bench` output: list, results, bench (paired tests, speed), side by side."""

from __future__ import annotations

import html
import json
import re

import pytest
from fastapi.testclient import TestClient

from llmops.ui import create_app
from llmops.ui.session import COOKIE

from .helpers import make_keys

pytestmark = pytest.mark.slow


@pytest.fixture
def c(sqlite_url, bench_root):
    keys = make_keys(sqlite_url)
    app = create_app(sqlite_url, evals_dirs=[bench_root / "bench"])
    with TestClient(app, base_url="http://localhost") as client:
        client.cookies.set(COOKIE, app.state.codec.new(keys.rater)[0])
        yield client


def test_list_results_and_bench(c, bench_root):
    r = c.get("/evals")
    assert r.status_code == 200
    links = re.findall(r'href="(/evals/(?:run|bench)/[^"]+)"', r.text)
    assert sorted(links) == ["/evals/bench/0/.", "/evals/run/0/docstring_summary/0-base",
                             "/evals/run/0/docstring_summary/1-cand"]
    assert len(re.findall(r'href="/evals/run/', c.get("/evals?kind=eval").text)) == 2
    run = c.get("/evals/run/0/docstring_summary/0-base")
    results = json.loads((bench_root / "bench" / "docstring_summary" / "0-base" / "results.json").read_text())
    assert run.status_code == 200 and results["provenance"]["suite_hash"] in run.text
    assert f'{results["metrics"]["bleu"]["score"]:.4g}' in run.text
    bench = c.get("/evals/bench/0/.")
    assert bench.status_code == 200 and "tok/s @1" in bench.text and "Holm" in bench.text
    [side] = re.findall(r'href="(/evals/compare[^"]+)"', bench.text)
    assert c.get(html.unescape(side)).status_code == 200


def test_side_by_side_filters_and_pages(c, bench_root):
    base = "/evals/compare?a=0/docstring_summary/0-base&b=0/docstring_summary/1-cand"
    r = c.get(base)
    assert r.status_code == 200 and 'id="paired"' in r.text
    assert r.text.count('<tr class="sample">') == 8
    a = [json.loads(x) for x in (bench_root / "bench/docstring_summary/0-base/samples.jsonl").read_text().splitlines()]
    b = [json.loads(x) for x in (bench_root / "bench/docstring_summary/1-cand/samples.jsonl").read_text().splitlines()]
    better = sum(y["scores"]["rouge1"] > x["scores"]["rouge1"] for x, y in zip(a, b))
    differ = sum(x["output"] != y["output"] for x, y in zip(a, b))
    assert c.get(base + "&metric=rouge1&only=better").text.count('<tr class="sample">') == better
    assert c.get(base + "&only=differ").text.count('<tr class="sample">') == differ
    word = a[0]["prompt"].split()[3]
    assert 1 <= c.get(base + f"&q={word}").text.count('<tr class="sample">') <= 8
    assert c.get(base + "&only=nonsense").status_code == 400
    assert c.get(base + "&metric=nope").status_code == 400
    assert c.get("/evals/compare?a=0/docstring_summary/0-base&b=0/../../etc").status_code == 404
    assert c.get("/evals/run/0/docstring_summary/0-base?sort=-rouge1&page=2").status_code == 200

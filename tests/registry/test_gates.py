"""Promotion gates: refusals name the failing rule; --force needs an admin; all logged."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llmops.cli.main import main
from llmops.errors import ConfigError
from llmops.registry import api
from llmops.registry.entities import PromotionRefused, RegistryError

from .helpers import make_eval_dir, make_model_dir

GATES = """
admins: [root-admin]
aliases:
  production:
    rules:
      - {name: rouge-floor, type: metric_threshold, suite: docstrings, metric: rougeL, min: 0.25}
      - {name: no-regression, type: no_regression, suite: docstrings, metrics: [rougeL], alpha: 0.05}
      - {type: required_tags, tags: {reviewed: "yes"}}
"""


@pytest.fixture
def gates(tmp_path: Path) -> Path:
    path = tmp_path / "gates.yaml"
    path.write_text(GATES)
    return path


def _version(tmp_path: Path, url: str, i: int, rouge: float, reviewed: bool = True) -> int:
    mv = api.register_version("docs", make_model_dir(tmp_path / f"m{i}", str(i)), db_url=url,
                              tags={"reviewed": "yes"} if reviewed else {})
    ev = make_eval_dir(tmp_path / f"ev{i}", "docstrings", {"rougeL": rouge},
                       {"rougeL": [rouge + d for d in (-0.02, 0.0, 0.02)] * 20})
    api.attach_eval("docs", mv.version, ev, db_url=url)
    return mv.version


def fake_paired(baseline: Path, candidate: Path) -> dict:
    """Stands in for llmops.eval.api.paired_compare: significant iff |delta| > 0.02."""
    b = json.loads((baseline / "results.json").read_text())["metrics"]
    c = json.loads((candidate / "results.json").read_text())["metrics"]
    out = {}
    for m in b:
        delta = c[m]["score"] - b[m]["score"]
        out[m] = {"baseline": b[m]["score"], "candidate": c[m]["score"], "delta": delta,
                  "p_value": 0.001 if abs(delta) > 0.02 else 0.6, "test": "fake"}
    return out


def test_gate_refuses_worse_candidate_and_names_the_rule(db_url, tmp_path, gates):
    v1 = _version(tmp_path, db_url, 1, 0.40)
    v2 = _version(tmp_path, db_url, 2, 0.30)  # above the floor but a significant regression
    v3 = _version(tmp_path, db_url, 3, 0.10)  # below the floor
    v4 = _version(tmp_path, db_url, 4, 0.41, reviewed=False)
    api.promote("docs", v1, "production", gates, actor="alice", reason="first", db_url=db_url, compare=fake_paired)
    with pytest.raises(PromotionRefused, match=r"rule `no-regression` \(no_regression\).*rougeL 0.4 -> 0.3") as exc:
        api.promote("docs", v2, "production", gates, actor="alice", db_url=db_url, compare=fake_paired)
    assert "rouge-floor" not in str(exc.value)
    floor = r"rule `rouge-floor` \(metric_threshold\): rougeL on docstrings = 0.1 < min 0.25"
    with pytest.raises(PromotionRefused, match=floor):
        api.promote("docs", v3, "production", gates, actor="alice", db_url=db_url, compare=fake_paired)
    with pytest.raises(PromotionRefused, match=r"rule `required_tags#3`.*missing tag\(s\) reviewed=yes"):
        api.promote("docs", v4, "production", gates, actor="alice", db_url=db_url, compare=fake_paired)
    assert api.get_version("docs", alias="production", db_url=db_url).version == v1
    decisions = [(p.version, p.decision) for p in api.get_store(db_url).promotions("docs")]
    assert decisions == [(v1, "accepted"), (v2, "refused"), (v3, "refused"), (v4, "refused")]
    # a better candidate passes every rule
    v5 = _version(tmp_path, db_url, 5, 0.45)
    rec = api.promote("docs", v5, "production", gates, actor="alice", db_url=db_url, compare=fake_paired)
    assert rec.decision == "accepted" and all(r["passed"] for r in rec.report["results"])
    moves = [(e.from_version, e.to_version) for e in api.alias_history("docs", "production", db_url=db_url)]
    assert moves == [(None, v1), (v1, v5)]


def test_force_needs_an_admin_and_is_logged(sqlite_url, tmp_path, gates):
    v1 = _version(tmp_path, sqlite_url, 1, 0.10)
    with pytest.raises(RegistryError, match="--force needs an admin: `mallory`"):
        api.promote("docs", v1, "production", gates, actor="mallory", force=True, db_url=sqlite_url)
    assert api.get_store(sqlite_url).alias_version("docs", "production") is None
    rec = api.promote("docs", v1, "production", gates, actor="root-admin", reason="hotfix", force=True,
                      db_url=sqlite_url)
    assert rec.decision == "forced"
    event = api.alias_history("docs", "production", db_url=sqlite_url)[-1]
    assert event.forced and event.actor == "root-admin" and "rouge-floor" in event.reason
    assert [p.decision for p in api.get_store(sqlite_url).promotions("docs")] == ["refused", "forced"]


def test_requires_alias_and_lineage_rules(sqlite_url, tmp_path):
    gates = tmp_path / "g.yaml"
    gates.write_text("aliases:\n  production:\n    rules:\n      - {type: requires_alias, alias: staging}\n"
                     "      - {type: required_lineage, keys: [run_id]}\n")
    mv = api.register_version("m", make_model_dir(tmp_path / "a"), lineage={"run_id": "r"}, db_url=sqlite_url)
    with pytest.raises(PromotionRefused, match="does not hold `staging`"):
        api.promote("m", mv.version, "production", gates, db_url=sqlite_url)
    api.promote("m", mv.version, "staging", gates, db_url=sqlite_url)  # no gates on staging
    assert api.promote("m", mv.version, "production", gates, db_url=sqlite_url).decision == "accepted"


@pytest.mark.parametrize("text, where", [
    ("aliases:\n  production:\n    rules:\n      - {type: metric_threshold, suite: s, metric: m}\n", "rules.0"),
    ("aliases:\n  production:\n    rules:\n      - {type: vibes}\n", "rules.0"),
    ("admins: alice\n", "admins"),
])
def test_bad_gates_file_names_the_key(tmp_path, text, where):
    from llmops.registry.gates import load_gates

    path = tmp_path / "g.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=rf"g.yaml(:\d+)?: .*{where}"):
        load_gates(path)


def test_shipped_production_gates_validate():
    from llmops.registry.gates import load_gates

    cfg = load_gates(Path(__file__).parents[2] / "recipes" / "gates" / "production.yaml")
    assert cfg.aliases["production"].rules


def test_cli_promote_refusal_exit_code_and_message(sqlite_url, tmp_path, gates, capsys):
    v1 = _version(tmp_path, sqlite_url, 1, 0.10)
    rc = main(["registry", "promote", f"docs/{v1}", "--to", "production", "--gates", str(gates),
               "--actor", "alice", "--db", sqlite_url])
    err = capsys.readouterr().err
    assert rc == 1 and "rule `rouge-floor`" in err
    rc = main(["registry", "promote", f"docs/{v1}", "--to", "production", "--gates", str(gates),
               "--actor", "alice", "--force", "--db", sqlite_url])
    assert rc == 2 and "--force needs an admin" in capsys.readouterr().err


def _harness_eval_dir(path: Path, predictions: list[str], references: list[str]) -> Path:
    """A result directory in the evaluation harness's format, scored by the harness's own metrics."""
    from llmops.eval.metrics import build_metric

    path.mkdir(parents=True)
    metrics, stats = {}, {}
    for name in ("exact_match", "token_f1"):
        metric = build_metric(name)
        (res,) = metric.compute(predictions, [[r] for r in references]).values()
        metrics[name] = {"score": res.score, "ci_low": res.score, "ci_high": res.score, "n": len(predictions),
                         "higher_is_better": res.higher_is_better, "binary": res.binary,
                         "signature": res.signature, "spec": metric.spec()}
        stats[name] = res.stats
    provenance = {"suite": {"name": "qa"}, "suite_hash": "s" * 64, "dataset_fingerprint": "d" * 64}
    (path / "results.json").write_text(json.dumps({"suite": "qa", "metrics": metrics, "provenance": provenance}))
    rows = [{"index": i, "stats": {n: stats[n][i].tolist() for n in stats}} for i in range(len(predictions))]
    (path / "samples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_no_regression_uses_the_harness_paired_test(sqlite_url, tmp_path):
    from llmops.eval.api import paired_compare  # what the CLI and the loop pass to the gates
    refs = [f"answer {i}" for i in range(80)]
    good = list(refs)
    bad = [r if i % 3 else "wrong" for i, r in enumerate(refs)]  # a third of the answers lost
    gates = tmp_path / "g.yaml"
    gates.write_text("aliases:\n  production:\n    rules:\n"
                     "      - {name: qa-no-regression, type: no_regression, suite: qa, alpha: 0.05}\n")
    for i, preds in enumerate((good, bad, good), 1):
        api.register_version("qa", make_model_dir(tmp_path / f"m{i}", str(i)), db_url=sqlite_url)
        api.attach_eval("qa", i, _harness_eval_dir(tmp_path / f"ev{i}", preds, refs), db_url=sqlite_url)
    api.promote("qa", 1, "production", gates, db_url=sqlite_url, compare=paired_compare)
    with pytest.raises(PromotionRefused, match=r"rule `qa-no-regression`.*exact_match 1 -> 0\.6.*mcnemar"):
        api.promote("qa", 2, "production", gates, db_url=sqlite_url, compare=paired_compare)
    assert api.promote("qa", 3, "production", gates, db_url=sqlite_url, compare=paired_compare).decision == "accepted"  # equal: no regression


def test_no_regression_without_a_comparison_function_is_a_clear_error(sqlite_url, tmp_path):
    """The registry sits below the harness: the caller must hand the paired test in."""
    from llmops.errors import ConfigError

    gates = tmp_path / "g.yaml"
    gates.write_text("aliases:\n  production:\n    rules:\n      - {type: no_regression, suite: docstrings}\n")
    v1 = _version(tmp_path, sqlite_url, 1, 0.40)
    v2 = _version(tmp_path, sqlite_url, 2, 0.40)
    api.promote("docs", v1, "production", gates, actor="alice", db_url=sqlite_url, compare=fake_paired)
    with pytest.raises(ConfigError, match="need a paired comparison function"):
        api.promote("docs", v2, "production", gates, actor="alice", db_url=sqlite_url)


def test_no_regression_gate_on_a_refused_metric(sqlite_url, tmp_path):
    """Token-level scores of models with different tokenizers come back refused: a gate that
    names such a metric fails with the reason; without a metric list it is left out."""
    gates = tmp_path / "g.yaml"
    gates.write_text("aliases:\n  production:\n    rules:\n"
                     "      - {name: ppl, type: no_regression, suite: docstrings, metrics: [perplexity]}\n")
    gates_all = tmp_path / "g2.yaml"
    gates_all.write_text("aliases:\n  production:\n    rules:\n      - {type: no_regression, suite: docstrings}\n")

    def refusing(baseline: Path, candidate: Path) -> dict:
        out = fake_paired(baseline, candidate)
        out["perplexity"] = {"refused": "the tokenizers differ", "higher_is_better": False}
        return out

    v1 = _version(tmp_path, sqlite_url, 1, 0.40)
    v2 = _version(tmp_path, sqlite_url, 2, 0.40)
    api.promote("docs", v1, "production", gates, db_url=sqlite_url, compare=refusing)
    with pytest.raises(PromotionRefused, match=r"`perplexity` cannot be compared: the tokenizers differ"):
        api.promote("docs", v2, "production", gates, db_url=sqlite_url, compare=refusing)
    assert api.promote("docs", v2, "production", gates_all, db_url=sqlite_url, compare=refusing).decision == "accepted"

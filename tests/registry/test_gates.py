"""Promotion gates: sound statistics, refusals that name the rule, governed aliases, all audited."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from llmops.cli.main import main
from llmops.errors import ConfigError
from llmops.registry import api
from llmops.registry.entities import PromotionRefused, RegistryError
from llmops.registry.governance import Forbidden, Principal

from .helpers import admin, make_eval_dir, make_key, make_model_dir

GATES = """
aliases:
  production:
    rules:
      - {name: rouge-floor, type: metric_threshold, suite: docstrings, metric: rougeL, min: 0.25}
      - {name: no-regression, type: no_regression, suite: docstrings, metrics: [rougeL], margin: 0.02, alpha: 0.05}
      - {type: required_tags, tags: {reviewed: "yes"}}
"""


@pytest.fixture
def gates(tmp_path: Path) -> Path:
    path = tmp_path / "gates.yaml"
    path.write_text(GATES)
    return path


def _version(tmp_path: Path, url: str, i: int, rouge: float, reviewed: bool = True, name: str = "docs",
             extra: dict[str, float] | None = None) -> int:
    mv = api.register_version(name, make_model_dir(tmp_path / f"m{i}", str(i)), db_url=url,
                              tags={"reviewed": "yes"} if reviewed else {})
    ev = make_eval_dir(tmp_path / f"ev{i}", "docstrings", {"rougeL": rouge, **(extra or {})},
                       {"rougeL": [rouge + d for d in (-0.02, 0.0, 0.02)] * 20}, model_hash=mv.sha256)
    api.attach_eval(name, mv.version, ev, db_url=url)
    return mv.version


def fake_bootstrap(sd: float = 0.005, overrides: dict | None = None):
    """Stands in for llmops.eval.api.bootstrap_compare: replicates ~ N(delta, sd) (or given arrays)."""

    def compare(baseline: Path, candidate: Path) -> dict:
        b = json.loads((baseline / "results.json").read_text())["metrics"]
        c = json.loads((candidate / "results.json").read_text())["metrics"]
        out = {}
        for m in b:
            delta = c[m]["score"] - b[m]["score"]
            deltas = (overrides or {}).get(m)
            if deltas is None:
                deltas = np.random.default_rng(0).normal(delta, sd, 2000)
            out[m] = {"baseline": b[m]["score"], "candidate": c[m]["score"], "delta": delta,
                      "higher_is_better": True, "deltas": list(deltas)}
        return out

    return compare


def test_gate_refuses_worse_candidate_and_names_the_rule(db_url, tmp_path, gates):
    compare = fake_bootstrap()
    v1 = _version(tmp_path, db_url, 1, 0.40)
    v2 = _version(tmp_path, db_url, 2, 0.30)  # above the floor but far below the margin
    v3 = _version(tmp_path, db_url, 3, 0.10)  # below the floor
    v4 = _version(tmp_path, db_url, 4, 0.41, reviewed=False)
    api.promote("docs", v1, "production", gates, actor="alice", reason="first", db_url=db_url, compare=compare)
    with pytest.raises(PromotionRefused, match=r"rule `no-regression` \(no_regression\): not shown non-inferior "
                                               r"\(margin 0.02\).*rougeL 0.4 -> 0.3") as exc:
        api.promote("docs", v2, "production", gates, actor="alice", db_url=db_url, compare=compare)
    assert "rouge-floor" not in str(exc.value)
    floor = r"rule `rouge-floor` \(metric_threshold\): rougeL on docstrings = 0.1 < min 0.25"
    with pytest.raises(PromotionRefused, match=floor):
        api.promote("docs", v3, "production", gates, actor="alice", db_url=db_url, compare=compare)
    with pytest.raises(PromotionRefused, match=r"rule `required_tags#3`.*missing tag\(s\) reviewed=yes"):
        api.promote("docs", v4, "production", gates, actor="alice", db_url=db_url, compare=compare)
    assert api.get_version("docs", alias="production", db_url=db_url).version == v1
    decisions = [(p.version, p.decision) for p in api.get_store(db_url).promotions("docs")]
    assert decisions == [(v1, "accepted"), (v2, "refused"), (v3, "refused"), (v4, "refused")]
    # a slightly worse candidate, well inside the margin, is non-inferior
    v5 = _version(tmp_path, db_url, 5, 0.395)
    rec = api.promote("docs", v5, "production", gates, actor="alice", db_url=db_url, compare=compare)
    assert rec.decision == "accepted" and all(r["passed"] for r in rec.report["results"])
    (test,) = rec.report["results"][1]["tests"]  # every gate result records its statistics
    assert test["test"] == "non-inferiority (paired bootstrap)" and test["threshold"] == -0.02
    assert test["estimate"] == pytest.approx(-0.005) and test["p_value"] < 0.05
    assert test["interval"][0] > -0.02 and test["confidence"] == pytest.approx(0.9)
    moves = [(e.from_version, e.to_version) for e in api.alias_history("docs", "production", db_url=db_url)]
    assert moves == [(None, v1), (v1, v5)]


def test_no_regression_needs_evidence_not_just_a_non_significant_drop(sqlite_url, tmp_path, gates):
    """ROUGE-L 0.102 -> 0.082 with a wide interval (p ~ 0.3 for 'any difference') used to pass."""
    v1 = _version(tmp_path, sqlite_url, 1, 0.30)
    v2 = _version(tmp_path, sqlite_url, 2, 0.28)
    noisy = fake_bootstrap(sd=0.02)
    api.promote("docs", v1, "production", gates, db_url=sqlite_url, compare=noisy)
    with pytest.raises(PromotionRefused, match="not shown non-inferior") as exc:
        api.promote("docs", v2, "production", gates, db_url=sqlite_url, compare=noisy)
    (test,) = exc.value.report["results"][1]["tests"]
    assert test["p_value"] > 0.05 and test["interval"][0] < -0.02


def test_margin_is_required(tmp_path):
    from llmops.registry.gates import load_gates

    path = tmp_path / "g.yaml"
    path.write_text("aliases:\n  p:\n    rules:\n      - {type: no_regression, suite: s}\n")
    with pytest.raises(ConfigError, match="margin"):
        load_gates(path)


def test_better_requires_significance_with_holm_across_metrics(sqlite_url, tmp_path):
    gates = tmp_path / "g.yaml"
    gates.write_text("aliases:\n  production:\n    rules:\n"
                     "      - {name: better, type: better, suite: docstrings, metrics: [rougeL, bleu], alpha: 0.05}\n")
    v1 = _version(tmp_path, sqlite_url, 1, 0.30, extra={"bleu": 0.10})
    v2 = _version(tmp_path, sqlite_url, 2, 0.31, extra={"bleu": 0.11})

    def replicates(n_at_or_below_zero: int) -> np.ndarray:
        return np.concatenate([np.full(n_at_or_below_zero, -0.001), np.full(2000 - n_at_or_below_zero, 0.01)])

    # raw one-sided p: 60/2001 = 0.030 and 78/2001 = 0.039, both < 0.05; Holm: 0.060 and 0.060
    compare = fake_bootstrap(overrides={"rougeL": replicates(59), "bleu": replicates(77)})
    api.promote("docs", v1, "production", gates, db_url=sqlite_url, compare=compare)
    with pytest.raises(PromotionRefused, match=r"not shown better \(all of the metrics.*Holm p=0.06") as exc:
        api.promote("docs", v2, "production", gates, db_url=sqlite_url, compare=compare)
    tests = {t["metric"]: t for t in exc.value.report["results"][0]["tests"]}
    assert tests["rougeL"]["p_value"] == pytest.approx(60 / 2001)
    assert tests["rougeL"]["p_adjusted"] == pytest.approx(2 * 60 / 2001)
    assert tests["bleu"]["p_adjusted"] == pytest.approx(2 * 60 / 2001)  # Holm is monotone
    clear = fake_bootstrap(overrides={"rougeL": replicates(10), "bleu": replicates(20)})
    assert api.promote("docs", v2, "production", gates, db_url=sqlite_url, compare=clear).decision == "accepted"


def test_force_needs_an_admin_and_a_reason_and_is_audited(sqlite_url, tmp_path, gates):
    v1 = _version(tmp_path, sqlite_url, 1, 0.10)
    with pytest.raises(Forbidden, match="needs an admin key"):
        api.promote("docs", v1, "production", gates, actor="mallory", force=True, reason="x", db_url=sqlite_url)
    assert api.get_store(sqlite_url).alias_version("docs", "production") is None
    with pytest.raises(RegistryError, match="needs a --reason"):
        api.promote("docs", v1, "production", gates, principal=admin(), force=True, db_url=sqlite_url)
    rec = api.promote("docs", v1, "production", gates, principal=admin(), reason="hotfix", force=True,
                      db_url=sqlite_url)
    assert rec.decision == "forced"
    event = api.alias_history("docs", "production", db_url=sqlite_url)[-1]
    assert event.forced and event.actor == "test-admin" and "rouge-floor" in event.reason
    assert [p.decision for p in api.get_store(sqlite_url).promotions("docs")] == ["refused", "forced"]
    (audit,) = api.get_store(sqlite_url).audit_log("docs")
    assert (audit.action, audit.actor, audit.detail["alias"]) == ("force_alias", "test-admin", "production")


def test_protected_alias_moves_only_through_its_stored_gates(db_url, tmp_path, gates):
    from llmops.registry import governance

    store = api.get_store(db_url)
    service = Principal("key:svc", "service")
    with pytest.raises(Forbidden, match="may not policy"):
        governance.set_policy(store, service, "docs", "production", gates)
    governance.set_policy(store, admin(), "*", "production", gates, reason="ship only what passes")
    v1 = _version(tmp_path, db_url, 1, 0.40)
    v2 = _version(tmp_path, db_url, 2, 0.10)
    with pytest.raises(Forbidden, match="protected: it moves only through `registry promote`"):
        api.set_alias("docs", "production", v1, principal=service, db_url=db_url)
    with pytest.raises(Forbidden, match="may not force"):
        api.set_alias("docs", "production", v1, principal=service, force=True, reason="x", db_url=db_url)
    lax = tmp_path / "lax.yaml"
    lax.write_text("aliases:\n  production:\n    rules:\n      - {name: extra, type: required_lineage, keys: [run_id]}\n")
    # a gates file can only add rules to the stored policy, never replace them
    with pytest.raises(PromotionRefused, match=r"rule `extra`.*lineage lacks run_id") as exc:
        api.promote("docs", v1, "production", lax, principal=service, db_url=db_url, compare=fake_bootstrap())
    assert [r["rule"] for r in exc.value.report["results"]] == ["rouge-floor", "no-regression", "required_tags#3",
                                                                 "extra"]
    # no gates file: the stored policy judges
    api.promote("docs", v1, "production", None, principal=service, db_url=db_url, compare=fake_bootstrap())
    with pytest.raises(PromotionRefused, match="rouge-floor"):
        api.promote("docs", v2, "production", None, principal=service, db_url=db_url, compare=fake_bootstrap())
    ev = api.set_alias("docs", "production", v2, principal=admin(), force=True, reason="incident 42", db_url=db_url)
    assert ev.forced and ev.actor == "test-admin"
    actions = [(a.action, a.reason) for a in store.audit_log()]
    assert actions == [("policy", "ship only what passes"), ("force_alias", "incident 42")]
    api.set_alias("docs", "staging", v2, principal=service, db_url=db_url)  # unprotected aliases move freely


def test_tag_changes_and_deletions_are_audited(sqlite_url, tmp_path):
    v1 = _version(tmp_path, sqlite_url, 1, 0.3)
    api.set_tags("docs", v1, {"reviewed": None, "signoff": "carol"}, principal=Principal("key:c", "service"),
                 reason="reviewed in JIRA-1", db_url=sqlite_url)
    with pytest.raises(Forbidden, match="may not delete"):
        api.delete_version("docs", v1, principal=Principal("key:c", "service"), db_url=sqlite_url)
    api.delete_version("docs", v1, principal=admin(), reason="leaked data", db_url=sqlite_url)
    log = api.get_store(sqlite_url).audit_log("docs")
    assert [(e.action, e.actor, e.reason) for e in log] == [("tags", "key:c", "reviewed in JIRA-1"),
                                                            ("delete", "test-admin", "leaked data")]
    assert log[0].detail["changes"] == {"reviewed": ["yes", None], "signoff": [None, "carol"]}


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
    ("admins: [alice]\n", "admins"),
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


def test_cli_promote_refusal_exit_code_and_message(sqlite_url, tmp_path, gates, capsys, monkeypatch):
    v1 = _version(tmp_path, sqlite_url, 1, 0.10)
    argv = ["registry", "promote", f"docs/{v1}", "--to", "production", "--gates", str(gates), "--db", sqlite_url]
    monkeypatch.setenv("LLMOPS_API_KEY", "llmf_0123456789ab_forged")
    assert main(argv) == 2 and "API key refused" in capsys.readouterr().err
    monkeypatch.setenv("LLMOPS_API_KEY", make_key(sqlite_url, "service"))
    rc = main(argv)
    assert rc == 1 and "rule `rouge-floor`" in capsys.readouterr().err
    rc = main([*argv, "--force", "--reason", "x"])
    assert rc == 2 and "needs an admin key" in capsys.readouterr().err
    monkeypatch.setenv("LLMOPS_API_KEY", make_key(sqlite_url, "admin", "root"))
    assert main([*argv, "--force", "--reason", "hotfix"]) == 0
    assert api.alias_history("docs", "production", db_url=sqlite_url)[-1].actor.endswith(":root")


def _harness_eval_dir(path: Path, predictions: list[str], references: list[str], model_hash: str) -> Path:
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
    provenance = {"suite": {"name": "qa"}, "suite_hash": "s" * 64, "dataset_fingerprint": "d" * 64,
                  "artifact_hash": model_hash}
    (path / "results.json").write_text(json.dumps({"suite": "qa", "metrics": metrics, "provenance": provenance}))
    rows = [{"index": i, "stats": {n: stats[n][i].tolist() for n in stats}} for i in range(len(predictions))]
    (path / "samples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_no_regression_uses_the_harness_bootstrap(sqlite_url, tmp_path):
    from llmops.eval.api import bootstrap_compare

    refs = [f"answer {i}" for i in range(80)]
    good = list(refs)
    bad = [r if i % 3 else "wrong" for i, r in enumerate(refs)]  # a third of the answers lost
    gates = tmp_path / "g.yaml"
    gates.write_text("aliases:\n  production:\n    rules:\n      - {name: qa-no-regression, type: no_regression,"
                     " suite: qa, metrics: [exact_match], margin: 0.05, alpha: 0.05}\n")
    for i, preds in enumerate((good, bad, good), 1):
        mv = api.register_version("qa", make_model_dir(tmp_path / f"m{i}", str(i)), db_url=sqlite_url)
        api.attach_eval("qa", i, _harness_eval_dir(tmp_path / f"ev{i}", preds, refs, mv.sha256), db_url=sqlite_url)
    api.promote("qa", 1, "production", gates, db_url=sqlite_url, compare=bootstrap_compare)
    with pytest.raises(PromotionRefused, match=r"rule `qa-no-regression`.*exact_match 1 -> 0\.6"):
        api.promote("qa", 2, "production", gates, db_url=sqlite_url, compare=bootstrap_compare)
    # identical outputs: every replicate is 0 > -margin, so non-inferiority is shown
    assert api.promote("qa", 3, "production", gates, db_url=sqlite_url, compare=bootstrap_compare).decision == "accepted"


def test_comparison_rules_without_a_comparison_function_are_a_clear_error(sqlite_url, tmp_path):
    """The registry sits below the harness: the caller must hand the comparison in."""
    gates = tmp_path / "g.yaml"
    gates.write_text("aliases:\n  production:\n    rules:\n      - {type: no_regression, suite: docstrings, margin: 0}\n")
    v1 = _version(tmp_path, sqlite_url, 1, 0.40)
    v2 = _version(tmp_path, sqlite_url, 2, 0.40)
    api.promote("docs", v1, "production", gates, db_url=sqlite_url, compare=fake_bootstrap())
    with pytest.raises(ConfigError, match="need a comparison function"):
        api.promote("docs", v2, "production", gates, db_url=sqlite_url)
def test_no_regression_gate_on_a_refused_metric(sqlite_url, tmp_path):
    """Token-level scores of models with different tokenizers come back refused: a gate that
    names such a metric fails with the reason; without a metric list it is left out."""
    gates = tmp_path / "g.yaml"
    gates.write_text("aliases:\n  production:\n    rules:\n"
                     "      - {name: ppl, type: no_regression, suite: docstrings, margin: 0.01, metrics: [perplexity]}\n")
    gates_all = tmp_path / "g2.yaml"
    gates_all.write_text("aliases:\n  production:\n    rules:\n"
                         "      - {type: no_regression, suite: docstrings, margin: 0.01}\n")
    base = fake_bootstrap()

    def refusing(baseline: Path, candidate: Path) -> dict:
        out = base(baseline, candidate)
        out["perplexity"] = {"refused": "the tokenizers differ", "higher_is_better": False}
        return out

    v1 = _version(tmp_path, sqlite_url, 1, 0.40)
    v2 = _version(tmp_path, sqlite_url, 2, 0.40)
    api.promote("docs", v1, "production", gates, db_url=sqlite_url, compare=refusing)
    with pytest.raises(PromotionRefused, match=r"perplexity: not comparable \(the tokenizers differ\)"):
        api.promote("docs", v2, "production", gates, db_url=sqlite_url, compare=refusing)
    assert api.promote("docs", v2, "production", gates_all, db_url=sqlite_url, compare=refusing).decision == "accepted"

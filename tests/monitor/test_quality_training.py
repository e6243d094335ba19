"""Quality from the feedback store (and the rating-drop rule), run plots, Prometheus export, stored references."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa

from llmops.cli.main import main
from llmops.errors import DataError
from llmops.monitor.alerts import AlertEngine
from llmops.monitor.prometheus import MonitorMetrics
from llmops.monitor.quality import mean_rating, quality_windows
from llmops.monitor.rules import load_rules

from llmops.monitor.synthetic import prompts

MODEL = "registry:docs@production"


def _rate(store, n: int, score: int, tag: str) -> list[int]:
    ids = []
    for i in range(n):
        created = store.create_item(f"prompt {tag} {i}", [{"text": "answer", "model": MODEL}])
        ids.append(store.add_rating(created.response_ids[0], score, store.rater(f"rater-{tag}-{i}")))
    return ids


@pytest.fixture
def feedback(db_url):
    pytest.importorskip("llmops.feedback.queries")
    from llmops.feedback.store import FeedbackStore

    store = FeedbackStore(db_url)
    old = _rate(store, 12, 5, "old")
    _rate(store, 12, 2, "new")
    backdated = datetime.now(timezone.utc) - timedelta(hours=36)
    with sa.create_engine(db_url.replace("postgresql://", "postgresql+psycopg://")).begin() as conn:
        conn.execute(sa.text(f"UPDATE feedback_ratings SET created_at = :t WHERE id IN ({','.join(map(str, old))})"),
                     {"t": backdated})
    return db_url


def test_quality_windows_and_rating_drop_rule(feedback, tmp_path):
    now = datetime.now(timezone.utc) + timedelta(seconds=1)
    cur, n = mean_rating(feedback, MODEL, now - timedelta(days=1), now)
    base, n_base = mean_rating(feedback, MODEL, now - timedelta(days=2), now - timedelta(days=1))
    assert (n, n_base) == (12, 12) and cur == pytest.approx(0.25) and base == pytest.approx(1.0)
    rows = quality_windows(feedback, timedelta(days=1), 3, now=now)
    assert [(r["n_ratings"], r["mean_rating"]) for r in rows] == [(12, 5.0), (12, 2.0)]
    rules = tmp_path / "r.yaml"
    rules.write_text(f"rules:\n  - {{name: drop, kind: rating_drop, model: '{MODEL}', window: 1d, min_ratings: 10, "
                     "trigger: 0.3, clear: 0.1}\n")
    (outcome,) = AlertEngine(load_rules(rules), feedback).check(now)
    assert outcome.event == "fired" and outcome.value == pytest.approx(0.75)


def _run_dir(tmp_path: Path) -> Path:
    run = tmp_path / "run"
    run.mkdir()
    recs = [{"kind": "train", "step": s, "loss": 5.0 / s, "lr": 1e-3 * (1 - s / 20), "grad_norm": 1.0,
             "tokens": 1000, "tokens_per_s": 9000.0 + s, "peak_mem_mb": 100.0} for s in range(1, 11)]
    recs.insert(5, {"kind": "eval", "step": 5, "eval_loss": 1.5, "eval_tokens": 400})
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs) + '{"kind": "tra')  # live run
    return run


def test_plot_run_writes_pngs_and_summary(tmp_path, capsys):
    run = _run_dir(tmp_path)
    assert main(["monitor", "plot", str(run), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    for png in result["plots"]:
        assert Path(png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    s = result["summaries"][str(run)]
    assert s["steps"] == 10 and s["first_loss"] == 5.0 and s["final_loss"] == 0.5 and s["loss_decreased"]
    assert s["units_total"] == 10_000 and s["unit"] == "tokens" and s["best_eval_loss"] == 1.5
    assert json.loads((run / "monitor" / "summary.json").read_text())[str(run)]["steps"] == 10
    (run / "metrics.jsonl").write_text('{"step": 1}\nnot json\n{"step": 2}\n')
    with pytest.raises(DataError, match=r"metrics.jsonl:2: invalid JSON"):
        from llmops.monitor.training import read_metrics

        read_metrics(run)


def test_prometheus_export(tmp_path):
    from llmops.monitor.alerts import RuleOutcome

    m = MonitorMetrics()
    m.observe_alerts([RuleOutcome("errors", "error_rate", 0.3, "", "firing", "fired", "docs")])
    m.observe_quality([{"model": MODEL, "n_ratings": 12, "mean_rating": 4.5, "win_rate": 0.6}])
    text = m.render()
    assert 'llmops_alert_firing{model="docs",rule="errors"} 1.0' in text
    assert 'llmops_alert_state{model="docs",rule="errors",state="firing"} 1.0' in text
    assert 'llmops_alert_state{model="docs",rule="errors",state="pending"} 0.0' in text
    assert 'llmops_alert_events_total{event="fired",rule="errors"} 1.0' in text
    assert f'llmops_quality_mean_rating{{model="{MODEL}"}} 4.5' in text
    m.write_textfile(tmp_path / "m.prom")
    assert "llmops_alert_value" in (tmp_path / "m.prom").read_text()


def test_reference_stored_with_registry_version(sqlite_url, tmp_path, monkeypatch, capsys):
    from llmops.monitor.references import load_reference
    from llmops.registry import api

    monkeypatch.setenv("LLMOPS_REGISTRY_ROOT", str(tmp_path / "art"))
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "config.json").write_text("{}")
    api.register_version("docs", tmp_path / "m", db_url=sqlite_url)
    api.set_alias("docs", "production", 1, db_url=sqlite_url)
    rng = np.random.default_rng(0)
    ref, cur = tmp_path / "ref.txt", tmp_path / "cur.txt"
    ref.write_text("\n".join(prompts(rng, 200, 30, 7)))
    cur.write_text("\n".join(prompts(rng, 200, 60, 7)))
    assert main(["monitor", "profile", str(ref), "--out", str(tmp_path / "p.json"), "--register", "docs/1",
                 "--db", sqlite_url]) == 0
    stored = load_reference("docs", 1, sqlite_url)
    assert stored == json.loads((tmp_path / "p.json").read_text())
    capsys.readouterr()
    assert main(["monitor", "drift", "--reference", "registry:docs@production", "--current", str(cur), "--json",
                 "--db", sqlite_url, "--fail-on-drift"]) == 1
    assert json.loads(capsys.readouterr().out)["drift"] is True
    # refitting a different profile for the same version is refused
    ref.write_text("\n".join(prompts(rng, 200, 10, 2)))
    assert main(["monitor", "profile", str(ref), "--out", str(tmp_path / "p2.json"), "--register", "docs/1",
                 "--db", sqlite_url]) == 2
    assert "never replaced" in capsys.readouterr().err


def test_cli_check_json(sqlite_url, tmp_path, capsys):
    now = datetime.now(timezone.utc)
    (tmp_path / "req.jsonl").write_text("".join(json.dumps({"ts": now.timestamp() - 10, "error": i < 3}) + "\n"
                                                for i in range(10)))
    (tmp_path / "r.yaml").write_text("rules:\n  - {name: e, kind: error_rate, source: req.jsonl, min_requests: 5, "
                                     "trigger: 0.2, clear: 0.1}\n")
    prom = tmp_path / "m.prom"
    assert main(["monitor", "check", "--rules", str(tmp_path / "r.yaml"), "--db", sqlite_url, "--json",
                 "--prometheus-textfile", str(prom)]) == 0
    (out,) = json.loads(capsys.readouterr().out)
    assert out["event"] == "fired" and out["value"] == pytest.approx(0.3)
    assert 'llmops_alert_firing{model="",rule="e"} 1.0' in prom.read_text()
    assert main(["monitor", "watch", "--rules", str(tmp_path / "r.yaml"), "--db", sqlite_url, "--interval", "0",
                 "--iterations", "2", "--json"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [json.loads(line)[0]["event"] for line in lines] == [None, None]  # still the same incident

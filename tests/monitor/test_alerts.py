"""Alert rules: one incident -> exactly one retraining launch within the cooldown, across restarts."""

from __future__ import annotations

import json
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from llmops.errors import ConfigError
from llmops.monitor.alerts import AlertEngine, reap, sign
from llmops.monitor.rules import load_rules

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=timezone.utc)

LAUNCHER = """
import os, sys
with open(sys.argv[1], "a") as fh:
    fh.write(f"{os.environ['LLMOPS_ALERT_RULE']} {sys.argv[2]}\\n")
"""


def _requests(path: Path, now: datetime, n: int, n_err: int) -> None:
    rows = [{"ts": (now - timedelta(minutes=1 + i % 50)).isoformat(), "status": 500 if i < n_err else 200}
            for i in range(n)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


@pytest.fixture
def rules_file(tmp_path: Path) -> Path:
    (tmp_path / "launch.py").write_text(LAUNCHER)
    path = tmp_path / "rules.yaml"
    path.write_text(f"""
rules:
  - name: errors
    kind: error_rate
    source: requests.jsonl
    window: 1h
    min_requests: 20
    trigger: 0.10
    clear: 0.02
    cooldown: 6h
    actions:
      - {{type: log}}
      - type: retrain
        recipe: recipes/sft.yaml
        command: ["{sys.executable}", "{tmp_path / 'launch.py'}", "{tmp_path / 'launches.txt'}", "{{recipe}}"]
""")
    return path


def _launches(tmp_path: Path) -> list[str]:
    path = tmp_path / "launches.txt"
    return path.read_text().splitlines() if path.exists() else []


def test_one_incident_one_retrain_across_restarts(db_url, tmp_path, rules_file):
    rules = load_rules(rules_file)
    src = tmp_path / "requests.jsonl"
    fired = []
    # the incident: 30% errors for several checks, each by a *new* engine (a restarted watcher)
    for minute in range(0, 50, 10):
        now = T0 + timedelta(minutes=minute)
        _requests(src, now, 100, 30)
        engine = AlertEngine(rules, db_url)
        (outcome,) = engine.check(now)
        fired.append(outcome.event)
        assert outcome.state == "firing" and outcome.value == pytest.approx(0.30)
        reap(engine)
    assert fired == ["fired", None, None, None, None]
    assert _launches(tmp_path) == ["errors recipes/sft.yaml"]
    # it clears (below `clear`), then a second incident inside the 6 h cooldown: suppressed
    _requests(src, T0 + timedelta(hours=1), 100, 1)
    assert AlertEngine(rules, db_url).check(T0 + timedelta(hours=1))[0].event == "cleared"
    _requests(src, T0 + timedelta(hours=2), 100, 50)
    assert AlertEngine(rules, db_url).check(T0 + timedelta(hours=2))[0].event == "suppressed"
    # between clear and trigger nothing changes (hysteresis)
    _requests(src, T0 + timedelta(hours=3), 100, 5)
    assert AlertEngine(rules, db_url).check(T0 + timedelta(hours=3))[0].event is None
    assert _launches(tmp_path) == ["errors recipes/sft.yaml"]
    # a new incident after the cooldown launches again
    _requests(src, T0 + timedelta(hours=8), 100, 1)
    AlertEngine(rules, db_url).check(T0 + timedelta(hours=8))
    _requests(src, T0 + timedelta(hours=9), 100, 40)
    engine = AlertEngine(rules, db_url)
    assert engine.check(T0 + timedelta(hours=9))[0].event == "fired"
    assert reap(engine) == [0]
    assert len(_launches(tmp_path)) == 2
    events = [e["event"] for e in engine.events("errors")]
    assert events == ["fired", "launched", "cleared", "suppressed", "cleared", "fired", "launched"]


def test_not_enough_data_changes_nothing(sqlite_url, tmp_path, rules_file):
    _requests(tmp_path / "requests.jsonl", T0, 5, 5)
    (outcome,) = AlertEngine(load_rules(rules_file), sqlite_url).check(T0)
    assert outcome.value is None and outcome.event is None and "only 5 requests" in outcome.detail


def test_webhook_is_hmac_signed(sqlite_url, tmp_path, monkeypatch):
    import httpx

    monkeypatch.setenv("HOOK_SECRET", "s3cret")
    sent = {}

    def fake_post(url, content, headers, timeout):
        sent.update(url=url, body=content, headers=headers)
        return httpx.Response(200, request=httpx.Request("POST", url))

    monkeypatch.setattr(httpx, "post", fake_post)
    (tmp_path / "r.yaml").write_text("""
rules:
  - {name: e, kind: error_rate, source: req.jsonl, trigger: 0.1, min_requests: 1,
     actions: [{type: webhook, url: "http://hooks.invalid/x", secret_env: HOOK_SECRET}]}
""")
    _requests(tmp_path / "req.jsonl", T0, 10, 5)
    (outcome,) = AlertEngine(load_rules(tmp_path / "r.yaml"), sqlite_url).check(T0)
    assert outcome.actions == [{"type": "webhook", "ok": True, "status": 200}]
    ts = sent["headers"]["X-LLMOps-Timestamp"]
    assert sent["headers"]["X-LLMOps-Signature"] == sign("s3cret", ts, sent["body"])
    assert json.loads(sent["body"])["rule"] == "e"


def test_rules_file_errors_name_the_key(tmp_path):
    bad = tmp_path / "r.yaml"
    bad.write_text("rules:\n  - {name: x, kind: error_rate, source: f, trigger: 0.1, clear: 0.5}\n")
    with pytest.raises(ConfigError, match=r"r.yaml(:\d+)?: rules.0.error_rate: .*clear"):
        load_rules(bad)
    bad.write_text("rules:\n  - {name: x, kind: error_rate, source: f, trigger: 0.1, window: soon}\n")
    with pytest.raises(ConfigError, match=r"rules.0.error_rate.window"):
        load_rules(bad)


def test_missing_webhook_secret_is_a_config_error(sqlite_url, tmp_path, monkeypatch):
    monkeypatch.delenv("NOPE_SECRET", raising=False)
    (tmp_path / "r.yaml").write_text("rules:\n  - {name: e, kind: error_rate, source: f, trigger: 0.1, actions: "
                                     "[{type: webhook, url: 'http://x', secret_env: NOPE_SECRET}]}\n")
    with pytest.raises(ConfigError, match=r"\$NOPE_SECRET is not set"):
        AlertEngine(load_rules(tmp_path / "r.yaml"), sqlite_url)


def test_shipped_alert_rules_validate():
    rules = load_rules(Path(__file__).parents[2] / "recipes" / "alerts" / "default.yaml")
    assert {r.kind for r in rules.rules} == {"rating_drop", "drift", "error_rate"}


@pytest.mark.slow
def test_concurrent_watchers_launch_once(db_url, tmp_path, rules_file):
    """Two watcher processes checking the same incident at the same moment: one launch."""
    import os
    import subprocess

    _requests(tmp_path / "requests.jsonl", T0, 100, 30)
    AlertEngine(load_rules(rules_file), db_url)  # schema first
    code = ("import sys; from datetime import datetime; from llmops.monitor.alerts import AlertEngine, reap; "
            "from llmops.monitor.rules import load_rules; e = AlertEngine(load_rules(sys.argv[1]), sys.argv[2]); "
            "e.check(datetime.fromisoformat(sys.argv[3])); reap(e)")
    procs = [subprocess.Popen([sys.executable, "-c", code, str(rules_file), db_url, T0.isoformat()], env=os.environ,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    for p in procs:
        assert p.wait(timeout=120) == 0, p.stderr.read()[-2000:]
    assert _launches(tmp_path) == ["errors recipes/sft.yaml"]

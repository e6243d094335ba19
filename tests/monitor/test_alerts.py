"""Alert state machine: every transition, incidents, retraining at most once per incident with a
cooldown from training start, waiting incidents retried, scopes, errors backed off, restarts."""

from __future__ import annotations

import json
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from llmops.errors import ConfigError
from llmops.monitor import incidents
from llmops.monitor.alerts import AlertEngine, reap
from llmops.monitor.notify import sign
from llmops.monitor.rules import load_rules

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=timezone.utc)

LAUNCHER = """
import os, sys
with open(sys.argv[1], "a") as fh:
    fh.write(f"{os.environ['LLMOPS_ALERT_RULE']} {os.environ['LLMOPS_INCIDENT_ID']} {sys.argv[2]}\\n")
"""


def _requests(path: Path, now: datetime, n: int, n_err: int) -> None:
    rows = [{"ts": (now - timedelta(minutes=1 + i % 50)).isoformat(), "status": 500 if i < n_err else 200}
            for i in range(n)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def _rules(tmp_path: Path, extra: str = "", for_checks: int = 1, name: str = "rules.yaml") -> Path:
    (tmp_path / "launch.py").write_text(LAUNCHER)
    path = tmp_path / name
    path.write_text(f"""
rules:
  - name: errors
    kind: error_rate
    model: docs
    source: requests.jsonl
    window: 1h
    min_requests: 20
    trigger: 0.10
    clear: 0.02
    for_checks: {for_checks}
    cooldown: 6h
    {extra}
    actions:
      - {{type: log}}
      - type: retrain
        recipe: recipes/sft.yaml
        max_attempts: 1
        command: ["{sys.executable}", "{tmp_path / 'launch.py'}", "{tmp_path / 'launches.txt'}", "{{recipe}}"]
""")
    return path


@pytest.fixture
def rules_file(tmp_path: Path) -> Path:
    return _rules(tmp_path)


def _launches(tmp_path: Path) -> list[str]:
    path = tmp_path / "launches.txt"
    return path.read_text().splitlines() if path.exists() else []


def _check(rules, db_url, now):
    engine = AlertEngine(rules, db_url)  # a new engine each time: every check is a restarted watcher
    (outcome,) = engine.check(now)
    reap(engine)
    return outcome, engine


def test_every_state_transition_survives_restarts(sqlite_url, tmp_path):
    rules = load_rules(_rules(tmp_path, extra="renotify: 1h", for_checks=2))
    src = tmp_path / "requests.jsonl"
    steps = [(0, 30, "pending", "pending"),       # ok -> pending (1 of 2 breaches)
             (5, 1, "ok", "ok"),                  # pending -> ok (dropped below trigger)
             (10, 30, "pending", "pending"),
             (15, 30, "firing", "fired"),         # pending -> firing: incident opened, retraining launched
             (20, 5, "firing", None),             # between clear and trigger: still firing (hysteresis)
             (90, 30, "firing", "renotified"),    # 1 h after the last notification
             (100, 1, "resolved", "resolved"),    # firing -> resolved: incident closed
             (110, 1, "ok", None)]                # resolved -> ok, quietly
    seen = []
    for minute, n_err, state, event in steps:
        now = T0 + timedelta(minutes=minute)
        _requests(src, now, 100, n_err)
        outcome, engine = _check(rules, sqlite_url, now)
        seen.append((outcome.state, outcome.event))
        if minute == 15:
            fired_incident = outcome.incident_id
    assert seen == [(s, e) for _, _, s, e in steps]
    # not enough data changes nothing, whatever the state
    _requests(src, T0 + timedelta(minutes=120), 5, 5)
    outcome, _ = _check(rules, sqlite_url, T0 + timedelta(minutes=120))
    assert outcome.value is None and outcome.event is None and outcome.state == "ok" and "only 5" in outcome.detail
    inc = incidents.get_incident(sqlite_url, fired_incident)
    assert inc["resolved_at"] is not None and inc["retrain"] == "done" and inc["job_id"]
    assert _launches(tmp_path) == [f"errors {fired_incident} {tmp_path / 'recipes' / 'sft.yaml'}"]
    events = [e["event"] for e in engine.events("errors")]
    assert events == ["pending", "ok", "pending", "fired", "launched", "renotified", "resolved"]
    assert len({e["event_id"] for e in engine.events("errors")}) == len(events)


def test_cooldown_starts_at_training_and_waiting_incidents_are_retried(db_url, tmp_path, rules_file):
    rules = load_rules(rules_file)
    src = tmp_path / "requests.jsonl"
    _requests(src, T0, 100, 30)
    first, _ = _check(rules, db_url, T0)
    assert first.event == "fired" and len(_launches(tmp_path)) == 1
    _requests(src, T0 + timedelta(hours=1), 100, 1)
    assert _check(rules, db_url, T0 + timedelta(hours=1))[0].event == "resolved"
    # a second incident 2 h after the first training started: it fires (people are told) but waits
    _requests(src, T0 + timedelta(hours=2), 100, 50)
    second, engine = _check(rules, db_url, T0 + timedelta(hours=2))
    assert second.event == "fired" and second.incident_id != first.incident_id
    assert second.actions[-1]["waiting"].startswith("cooldown")
    inc = incidents.get_incident(db_url, second.incident_id)
    assert inc["retrain"] == "waiting" and inc["next_try_at"] == (T0 + timedelta(hours=6)).isoformat()
    _requests(src, T0 + timedelta(hours=4), 100, 50)
    assert _check(rules, db_url, T0 + timedelta(hours=4))[0].event is None and len(_launches(tmp_path)) == 1
    # the cooldown ends while it still fires: the waiting incident is retried and trains, once
    for hours in (6, 7):
        _requests(src, T0 + timedelta(hours=hours), 100, 50)
        _check(rules, db_url, T0 + timedelta(hours=hours))
    assert [line.split()[1] for line in _launches(tmp_path)] == [str(first.incident_id), str(second.incident_id)]
    assert incidents.get_incident(db_url, second.incident_id)["retrain"] == "done"


def test_an_incident_that_resolves_while_waiting_is_abandoned(sqlite_url, tmp_path, rules_file):
    rules = load_rules(rules_file)
    src = tmp_path / "requests.jsonl"
    for hours, n_err in ((0, 30), (1, 1), (2, 30), (3, 1)):
        _requests(src, T0 + timedelta(hours=hours), 100, n_err)
        outcome, _ = _check(rules, sqlite_url, T0 + timedelta(hours=hours))
        if hours == 2:
            waiting = outcome.incident_id
    assert incidents.get_incident(sqlite_url, waiting)["retrain"] == "waiting"  # resolved, but not due yet
    _requests(src, T0 + timedelta(hours=7), 100, 1)
    _check(rules, sqlite_url, T0 + timedelta(hours=7))  # due: the retry finds it resolved
    inc = incidents.get_incident(sqlite_url, waiting)
    assert inc["retrain"] == "abandoned" and "resolved" in inc["why"]
    assert len(_launches(tmp_path)) == 1


def test_claims_are_exclusive_and_defer_releases_the_cooldown(sqlite_url, tmp_path, rules_file):
    rules = load_rules(rules_file.parent / "rules.yaml")
    rules.rules[0].actions = rules.rules[0].actions[:1]  # log only: the caller (a loop) retrains
    _requests(tmp_path / "requests.jsonl", T0, 100, 30)
    outcome, _ = _check(rules, sqlite_url, T0)
    iid = outcome.incident_id
    assert incidents.claim_retraining(sqlite_url, iid, "loop:a", timedelta(hours=6), T0) == (True, incidents.get_incident(sqlite_url, iid)["why"])
    assert incidents.claim_retraining(sqlite_url, iid, "loop:b", timedelta(hours=6), T0)[0] is False
    assert incidents.claim_retraining(sqlite_url, iid, "loop:a", timedelta(hours=6), T0)[0] is True  # restart
    incidents.defer_retraining(sqlite_url, iid, "only 3 preference pairs", T0 + timedelta(minutes=5))
    assert incidents.alert_states(sqlite_url)[0]["last_training_at"] is None  # nothing trained: no cooldown
    assert incidents.claim_retraining(sqlite_url, iid, "loop:b", timedelta(hours=6), T0 + timedelta(minutes=5))[0]


def test_rules_files_are_separate_scopes(sqlite_url, tmp_path):
    a = load_rules(_rules(tmp_path, name="a.yaml"))
    b = load_rules(_rules(tmp_path, name="b.yaml"))
    for rules in (a, b):
        rules.rules[0].actions = rules.rules[0].actions[:1]
    _requests(tmp_path / "requests.jsonl", T0, 100, 30)
    assert _check(a, sqlite_url, T0)[0].event == "fired"
    assert _check(b, sqlite_url, T0)[0].event == "fired"  # same rule name, its own state machine
    states = incidents.alert_states(sqlite_url)
    assert sorted(s["scope"] for s in states) == sorted([str(tmp_path / "a.yaml"), str(tmp_path / "b.yaml")])


def test_check_errors_are_recorded_backed_off_and_never_fatal(sqlite_url, tmp_path, rules_file):
    rules = load_rules(rules_file)
    engine = AlertEngine(rules, sqlite_url, error_backoff=timedelta(minutes=1))
    (o,) = engine.check(T0)  # the request log does not exist yet
    assert o.event == "error" and "requests.jsonl" in o.detail
    (o,) = engine.check(T0 + timedelta(seconds=30))
    assert o.event is None and "backing off" in o.detail
    (o,) = engine.check(T0 + timedelta(minutes=1))
    assert o.event == "error"  # second failure: the next try is 2 min later
    assert incidents.alert_states(sqlite_url)[0]["next_check_at"] == (T0 + timedelta(minutes=3)).isoformat()
    _requests(tmp_path / "requests.jsonl", T0, 100, 0)
    (o,) = engine.check(T0 + timedelta(minutes=3))
    assert o.event is None and o.value == 0.0 and incidents.alert_states(sqlite_url)[0]["errors"] == 0


def test_malformed_request_lines_are_counted_and_skipped(sqlite_url, tmp_path, rules_file):
    src = tmp_path / "requests.jsonl"
    _requests(src, T0, 100, 30)
    src.write_text(src.read_text() + "{not json\n" + json.dumps({"ts": "yesterday"}) + "\n" + '"just a string"\n')
    (o,) = AlertEngine(load_rules(rules_file), sqlite_url).check(T0)
    assert o.value == pytest.approx(0.30) and "3 malformed line(s) skipped" in o.detail


def test_webhook_event_id_hmac_retries_and_resolved(sqlite_url, tmp_path, monkeypatch):
    import httpx

    monkeypatch.setenv("HOOK_SECRET", "s3cret")
    sent = []
    codes = iter([503, 200, 200])

    def fake_post(url, content, headers, timeout):
        sent.append({"body": content, "headers": headers})
        return httpx.Response(next(codes), request=httpx.Request("POST", url))

    monkeypatch.setattr(httpx, "post", fake_post)
    monkeypatch.setattr("llmops.monitor.notify.time.sleep", lambda s: None)
    (tmp_path / "r.yaml").write_text("""
rules:
  - {name: e, kind: error_rate, source: req.jsonl, trigger: 0.1, clear: 0.05, min_requests: 1,
     actions: [{type: webhook, url: "http://hooks.invalid/x", secret_env: HOOK_SECRET, backoff_s: 0.01}]}
""")
    rules = load_rules(tmp_path / "r.yaml")
    _requests(tmp_path / "req.jsonl", T0, 10, 5)
    (outcome,) = AlertEngine(rules, sqlite_url).check(T0)
    assert outcome.actions == [{"type": "webhook", "ok": True, "status": 200, "attempts": 2}]
    first, retry = (json.loads(x["body"]) for x in sent[:2])
    assert first == retry and first["event"] == "fired" and first["incident_id"] == outcome.incident_id
    assert sent[1]["headers"]["X-LLMOps-Event-Id"] == first["event_id"]
    ts = sent[1]["headers"]["X-LLMOps-Timestamp"]
    assert sent[1]["headers"]["X-LLMOps-Signature"] == sign("s3cret", ts, sent[1]["body"])
    _requests(tmp_path / "req.jsonl", T0 + timedelta(hours=1), 10, 0)
    (outcome,) = AlertEngine(rules, sqlite_url).check(T0 + timedelta(hours=1))
    resolved = json.loads(sent[2]["body"])
    assert resolved["event"] == "resolved" and resolved["event_id"] != first["event_id"]
    assert resolved["incident_id"] == first["incident_id"]


def test_webhook_gives_up_on_4xx_and_records_it(sqlite_url, tmp_path, monkeypatch):
    import httpx

    monkeypatch.setenv("HOOK_SECRET", "x")
    calls = []
    monkeypatch.setattr(httpx, "post", lambda url, **k: calls.append(1) or httpx.Response(
        400, request=httpx.Request("POST", url)))
    (tmp_path / "r.yaml").write_text("rules:\n  - {name: e, kind: error_rate, source: req.jsonl, trigger: 0.1, "
                                     "min_requests: 1, actions: [{type: webhook, url: 'http://x', secret_env: HOOK_SECRET}]}\n")
    _requests(tmp_path / "req.jsonl", T0, 10, 5)
    engine = AlertEngine(load_rules(tmp_path / "r.yaml"), sqlite_url)
    (outcome,) = engine.check(T0)
    assert outcome.actions[0]["ok"] is False and outcome.actions[0]["error"] == "HTTP 400" and len(calls) == 1
    assert [e["event"] for e in engine.events()] == ["fired", "action_failed"]


def test_rules_file_errors_name_the_key(tmp_path):
    bad = tmp_path / "r.yaml"
    bad.write_text("rules:\n  - {name: x, kind: error_rate, source: f, trigger: 0.1, clear: 0.5}\n")
    with pytest.raises(ConfigError, match=r"r.yaml(:\d+)?: rules.0.error_rate: .*clear"):
        load_rules(bad)
    bad.write_text("rules:\n  - {name: x, kind: error_rate, source: f, trigger: 0.1, window: soon}\n")
    with pytest.raises(ConfigError, match=r"rules.0.error_rate.window"):
        load_rules(bad)
    bad.write_text("rules:\n  - {name: x, kind: error_rate, source: f, trigger: 0.1, "
                   "actions: [{type: retrain, recipe: r.yaml, launcher: template}]}\n")
    with pytest.raises(ConfigError, match="needs `command`"):
        load_rules(bad)


def test_missing_webhook_secret_is_a_config_error(sqlite_url, tmp_path, monkeypatch):
    monkeypatch.delenv("NOPE_SECRET", raising=False)
    (tmp_path / "r.yaml").write_text("rules:\n  - {name: e, kind: error_rate, source: f, trigger: 0.1, actions: "
                                     "[{type: webhook, url: 'http://x', secret_env: NOPE_SECRET}]}\n")
    with pytest.raises(ConfigError, match=r"\$NOPE_SECRET is not set"):
        AlertEngine(load_rules(tmp_path / "r.yaml"), sqlite_url)


def test_shipped_alert_rules_validate_and_resolve_recipes_against_the_file():
    repo = Path(__file__).parents[2]
    rules = load_rules(repo / "recipes" / "alerts" / "default.yaml")
    assert {r.kind for r in rules.rules} == {"rating_drop", "drift", "error_rate"}
    retrain = [a for r in rules.rules for a in r.actions if a.type == "retrain"]
    assert retrain and all(Path(a.recipe).is_file() for a in retrain)
    drift = [r for r in rules.rules if r.kind == "drift"]
    assert all(not any(a.type == "retrain" for a in r.actions) and r.for_checks >= 2 for r in drift)
    loop_rules = load_rules(repo / "recipes" / "loop" / "alerts.yaml")
    assert loop_rules.scope != rules.scope


def test_concurrent_watchers_launch_once(db_url, tmp_path, rules_file):
    """Two watcher processes checking the same incident at the same moment: one incident, one launch."""
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
    assert len(_launches(tmp_path)) == 1
    assert len(incidents.list_incidents(db_url)) == 1


def test_drift_rule_reads_only_its_time_window_and_fires_after_two_drifted_windows(sqlite_url, tmp_path):
    import numpy as np

    from llmops.monitor.drift import DriftConfig, fit_profile, save_profile
    from llmops.monitor.features import simple_tokenize, tokenizer_spec
    from llmops.monitor.synthetic import prompts

    rng = np.random.default_rng(0)
    save_profile(fit_profile(prompts(rng, 300, 30, 7), simple_tokenize, tokenizer_spec(None),
                             DriftConfig(window_sizes=(50, 100))), tmp_path / "ref.json")
    log = tmp_path / "requests.jsonl"

    def serve(now, old_mean, new_mean):  # 100 prompts a day ago, 100 in the last hour
        rows = [{"ts": (now - timedelta(days=1, minutes=i)).isoformat(), "prompt": p}
                for i, p in enumerate(prompts(rng, 100, old_mean, 7))]
        rows += [{"ts": (now - timedelta(minutes=i)).isoformat(), "prompt": p}
                 for i, p in enumerate(prompts(rng, 100, new_mean, 7))]
        log.write_text("".join(json.dumps(r) + "\n" for r in rows))

    (tmp_path / "r.yaml").write_text("rules:\n  - {name: drift, kind: drift, reference: ref.json, "
                                     "current: requests.jsonl, window: 6h}\n")
    rules = load_rules(tmp_path / "r.yaml")
    assert rules.rules[0].for_checks == 2  # drift rules wait for two drifted windows by default
    serve(T0, old_mean=90, new_mean=30)  # yesterday was very different; the window is not
    (o,) = AlertEngine(rules, sqlite_url).check(T0)
    assert o.value == 0.0 and o.detail.startswith("100 prompts")
    events = []
    for hours in (1, 2):
        serve(T0 + timedelta(hours=hours), old_mean=30, new_mean=90)
        (o,) = AlertEngine(rules, sqlite_url).check(T0 + timedelta(hours=hours))
        events.append((o.state, o.event))
    assert events == [("pending", "pending"), ("firing", "fired")]
    log.write_text("")
    (o,) = AlertEngine(rules, sqlite_url).check(T0 + timedelta(hours=3))
    assert o.value is None and o.state == "firing" and "no prompts" in o.detail

"""The shipped Grafana dashboard and Prometheus alerting rules name only metrics the exporter emits,
and the exporter serves on the configured address."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from llmops.monitor.prometheus import MonitorMetrics

DEPLOY = Path(__file__).parents[2] / "deploy" / "monitoring"
_METRIC = re.compile(r"\bllmops_[a-z0-9_]+")


def _exprs_dashboard() -> list[str]:
    dash = json.loads((DEPLOY / "grafana-dashboard.json").read_text())
    return [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]


def _exprs_rules() -> list[str]:
    rules = yaml.safe_load((DEPLOY / "prometheus-alerts.yaml").read_text())
    return [r["expr"] for g in rules["groups"] for r in g["rules"]]


def test_every_metric_named_in_dashboards_and_alert_rules_is_exported():
    exported = MonitorMetrics().metric_names()
    for source, exprs in (("grafana", _exprs_dashboard()), ("alert rules", _exprs_rules())):
        named = {m for e in exprs for m in _METRIC.findall(e)}
        assert named, source
        missing = sorted(named - exported)
        assert not missing, f"{source} names metrics the exporter does not emit: {missing}"
    # and the dashboard covers what the issue asks for: quality, drift, errors, feedback volume, jobs
    named = {m for e in _exprs_dashboard() for m in _METRIC.findall(e)}
    assert {"llmops_quality_mean_rating", "llmops_drift_statistic", "llmops_quality_ratings", "llmops_jobs",
            "llmops_alert_value"} <= named


def test_metric_name_check_can_fail():
    assert "llmops_no_such_metric" not in MonitorMetrics().metric_names()
    assert "llmops_alert_events_total" in MonitorMetrics().metric_names()


def test_metrics_are_served_on_the_configured_address():
    import socket

    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    m = MonitorMetrics()
    m.observe_jobs([{"status": "running"}, {"status": "failed"}, {"status": "failed"}])
    m.serve(port, addr="127.0.0.1")
    body = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    assert 'llmops_jobs{status="failed"} 2.0' in body and 'llmops_jobs{status="running"} 1.0' in body

"""Prometheus export of monitoring signals (own registry, so nothing global leaks in).

`watch --prometheus-port` serves it over HTTP; `--prometheus-textfile` writes the
node-exporter textfile format after every check.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest, start_http_server, write_to_textfile


class MonitorMetrics:
    """Every metric the shipped Grafana dashboard and Prometheus alerting rules use (a test checks the names)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.alert_value = Gauge("llmops_alert_value", "Latest value of an alert rule's signal",
                                 ["rule", "kind", "model"], registry=r)
        self.alert_firing = Gauge("llmops_alert_firing", "1 while an alert is firing", ["rule", "model"], registry=r)
        self.alert_state = Gauge("llmops_alert_state", "1 for the alert's current state (ok, pending, firing, resolved)",
                                 ["rule", "model", "state"], registry=r)
        self.alert_events = Counter("llmops_alert_events", "Alert events (pending, fired, resolved, error, ...)",
                                    ["rule", "event"], registry=r)
        self.check_errors = Counter("llmops_alert_check_errors", "Checks of a rule that raised (backed off)",
                                    ["rule"], registry=r)
        self.malformed = Gauge("llmops_request_log_malformed_lines", "Request-log lines skipped by the last check",
                               ["rule"], registry=r)
        self.drift_stat = Gauge("llmops_drift_statistic", "Drift statistic of a feature (its calibrated test)",
                                ["feature", "method"], registry=r)
        self.drift_threshold = Gauge("llmops_drift_threshold", "Calibrated threshold of a drift feature at this "
                                     "window size", ["feature", "method"], registry=r)
        self.drift_psi = Gauge("llmops_drift_psi", "PSI of a drift feature", ["feature"], registry=r)
        self.drift_flag = Gauge("llmops_drift_detected", "1 when a drift feature drifted", ["feature"], registry=r)
        self.quality_mean = Gauge("llmops_quality_mean_rating", "Mean rating per model", ["model"], registry=r)
        self.quality_win = Gauge("llmops_quality_win_rate", "Pairwise win rate per model", ["model"], registry=r)
        self.quality_n = Gauge("llmops_quality_ratings", "Ratings in the window per model (feedback volume)",
                               ["model"], registry=r)
        self.output_tokens = Gauge("llmops_output_response_words_mean", "Mean response length (words) per model "
                                   "version", ["model_version"], registry=r)
        self.output_refusal = Gauge("llmops_output_refusal_rate", "Share of responses that refuse, per model version",
                                    ["model_version"], registry=r)
        self.output_empty = Gauge("llmops_output_empty_rate", "Share of empty responses per model version",
                                  ["model_version"], registry=r)
        self.jobs = Gauge("llmops_jobs", "Retraining jobs by status", ["status"], registry=r)

    def observe_alerts(self, outcomes: list[Any], rules: list[Any] | None = None) -> None:
        for o in outcomes:
            if o.value is not None:
                self.alert_value.labels(o.rule, o.kind, o.model).set(o.value)
            self.alert_firing.labels(o.rule, o.model).set(1.0 if o.state == "firing" else 0.0)
            for state in ("ok", "pending", "firing", "resolved"):
                self.alert_state.labels(o.rule, o.model, state).set(1.0 if o.state == state else 0.0)
            if o.event:
                self.alert_events.labels(o.rule, o.event).inc()
            if o.event == "error":
                self.check_errors.labels(o.rule).inc()
        for rule in rules or []:
            if getattr(rule, "kind", None) == "error_rate":
                self.malformed.labels(rule.name).set(rule._malformed)

    def observe_drift(self, report: dict[str, Any]) -> None:
        for name, feat in report["features"].items():
            self.drift_stat.labels(name, feat["method"]).set(feat["statistic"])
            if feat.get("threshold") is not None:
                self.drift_threshold.labels(name, feat["method"]).set(feat["threshold"])
            if "psi" in feat:
                self.drift_psi.labels(name).set(feat["psi"])
            self.drift_flag.labels(name).set(1.0 if feat["drift"] else 0.0)

    def observe_quality(self, rows: list[dict[str, Any]]) -> None:
        for row in rows:
            model = str(row.get("model"))
            if row.get("mean_rating") is not None:
                self.quality_mean.labels(model).set(row["mean_rating"])
            if row.get("win_rate") is not None:
                self.quality_win.labels(model).set(row["win_rate"])
            self.quality_n.labels(model).set(row.get("n_ratings") or 0)

    def observe_outputs(self, rows: list[dict[str, Any]]) -> None:
        for row in rows:
            version = str(row["model_version"])
            self.output_tokens.labels(version).set(row["mean_words"])
            self.output_refusal.labels(version).set(row["refusal_rate"])
            self.output_empty.labels(version).set(row["empty_rate"])

    def observe_jobs(self, jobs: list[dict[str, Any]]) -> None:
        for status in ("queued", "running", "succeeded", "failed", "cancelled"):
            self.jobs.labels(status).set(sum(j["status"] == status for j in jobs))

    def metric_names(self) -> set[str]:
        """Every sample name this exporter can emit (counters as NAME_total)."""
        names = set()
        for family in self.registry.collect():
            names.add(family.name)
            if family.type == "counter":
                names.update({family.name + "_total", family.name + "_created"})
        return names

    def render(self) -> str:
        return generate_latest(self.registry).decode()

    def write_textfile(self, path: str | Path) -> None:
        write_to_textfile(str(path), self.registry)

    def serve(self, port: int, addr: str = "127.0.0.1") -> None:
        """Serve /metrics on ADDR:PORT (127.0.0.1 by default; 0.0.0.0 to be scraped from other hosts)."""
        start_http_server(port, addr=addr, registry=self.registry)

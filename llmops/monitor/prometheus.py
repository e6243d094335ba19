"""Prometheus export of monitoring signals (own registry, so nothing global leaks in).

`watch --prometheus-port` serves it over HTTP; `--prometheus-textfile` writes the
node-exporter textfile format after every check.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest, start_http_server, write_to_textfile


class MonitorMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.alert_value = Gauge("llmops_alert_value", "Latest value of an alert rule's signal", ["rule", "kind"],
                                 registry=r)
        self.alert_firing = Gauge("llmops_alert_firing", "1 while an alert rule is firing", ["rule"], registry=r)
        self.alert_events = Counter("llmops_alert_events", "Alert state changes", ["rule", "event"], registry=r)
        self.drift_stat = Gauge("llmops_drift_psi", "PSI of a drift feature", ["feature"], registry=r)
        self.drift_flag = Gauge("llmops_drift_detected", "1 when a drift feature drifted", ["feature"], registry=r)
        self.quality_mean = Gauge("llmops_quality_mean_rating", "Mean rating per model", ["model"], registry=r)
        self.quality_win = Gauge("llmops_quality_win_rate", "Pairwise win rate per model", ["model"], registry=r)
        self.quality_n = Gauge("llmops_quality_ratings", "Ratings in the window per model", ["model"], registry=r)

    def observe_alerts(self, outcomes: list[Any]) -> None:
        for o in outcomes:
            if o.value is not None:
                self.alert_value.labels(o.rule, o.kind).set(o.value)
            self.alert_firing.labels(o.rule).set(1.0 if o.state == "firing" else 0.0)
            if o.event:
                self.alert_events.labels(o.rule, o.event).inc()

    def observe_drift(self, report: dict[str, Any]) -> None:
        for name, feat in report["features"].items():
            self.drift_stat.labels(name).set(feat["psi"])
            self.drift_flag.labels(name).set(1.0 if feat["drift"] else 0.0)

    def observe_quality(self, rows: list[dict[str, Any]]) -> None:
        for row in rows:
            model = str(row.get("model"))
            if row.get("mean_rating") is not None:
                self.quality_mean.labels(model).set(row["mean_rating"])
            if row.get("win_rate") is not None:
                self.quality_win.labels(model).set(row["win_rate"])
            self.quality_n.labels(model).set(row.get("n_ratings") or 0)

    def render(self) -> str:
        return generate_latest(self.registry).decode()

    def write_textfile(self, path: str | Path) -> None:
        write_to_textfile(str(path), self.registry)

    def serve(self, port: int, addr: str = "127.0.0.1") -> None:
        start_http_server(port, addr=addr, registry=self.registry)

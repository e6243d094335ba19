"""Prometheus metrics of one serving app.

Each app owns a `CollectorRegistry` (several servers in one process, as in the
quickstart and the tests, keep separate counts); `/metrics` renders it followed by the
process-wide default registry, which holds the feedback API's metrics.
"""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
ROW_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


class ServeMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("llmops_serve_requests_total", "Requests answered", ["endpoint", "status"], registry=r)
        self.latency = Histogram("llmops_serve_request_seconds", "Time to answer a generation request",
                                 ["endpoint"], buckets=LATENCY_BUCKETS, registry=r)
        self.batch_rows = Histogram("llmops_serve_batch_rows", "Sequences per backend call (batch size)",
                                    buckets=ROW_BUCKETS, registry=r)
        self.batch_requests = Histogram("llmops_serve_batch_requests", "Requests per micro-batch",
                                        buckets=ROW_BUCKETS, registry=r)
        self.batch_seconds = Histogram("llmops_serve_batch_seconds", "Wall time of one backend call",
                                       buckets=LATENCY_BUCKETS, registry=r)
        self.queue_wait = Histogram("llmops_serve_queue_seconds", "Time a request waited for its batch",
                                    buckets=LATENCY_BUCKETS, registry=r)
        self.queue_depth = Gauge("llmops_serve_queue_depth", "Requests waiting for a batch", registry=r)
        self.prompt_tokens = Counter("llmops_serve_prompt_tokens_total", "Prompt tokens processed", registry=r)
        self.completion_tokens = Counter("llmops_serve_completion_tokens_total", "Tokens generated", registry=r)
        self.swaps = Counter("llmops_serve_model_swaps_total", "Model versions swapped in without restart", registry=r)
        self.model_info = Gauge("llmops_serve_model_info", "The version answering now (value 1)",
                                ["model", "version"], registry=r)

    def set_model(self, served_ref: str, version: str) -> None:
        self.model_info.clear()
        self.model_info.labels(served_ref, version).set(1)

    def render(self) -> tuple[bytes, str]:
        return generate_latest(self.registry) + generate_latest(REGISTRY), CONTENT_TYPE_LATEST

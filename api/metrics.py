"""Prometheus metrics: HTTP traffic by route template, predictions by head and label, review load.

Each app owns its :class:`CollectorRegistry`, so several apps (tests, reloads) never clash over
global collector names. Label values are bounded: route templates, label sets, status codes.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from threading import Lock
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
REVIEW_WINDOW = 1000


class ServiceMetrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("triage_http_requests_total", "HTTP requests answered.",
                                ["method", "route", "status"], registry=r)
        self.latency = Histogram("triage_http_request_duration_seconds",
                                 "Time from request start to response start.", ["method", "route"],
                                 buckets=LATENCY_BUCKETS, registry=r)
        self.predictions = Counter("triage_predictions_total", "Predicted labels per head.",
                                   ["head", "label"], registry=r)
        self.analyses = Counter("triage_analyses_total", "Messages analysed (replays excluded).",
                                registry=r)
        self.needs_review = Counter("triage_needs_review_total",
                                    "Analysed messages flagged needs_review.", registry=r)
        self.needs_review_rate = Gauge("triage_needs_review_ratio",
                                       f"Share of the last {REVIEW_WINDOW} analyses flagged "
                                       "needs_review.", registry=r)
        self.replays = Counter("triage_idempotent_replays_total",
                               "Analyses answered from the decision log.", registry=r)
        self.stage = Histogram("triage_stage_duration_seconds",
                               "Serving stages: queue_wait and decision_log per request, encode "
                               "and analyze (heads, signals, language, KB) per batch.",
                               ["stage"], buckets=LATENCY_BUCKETS, registry=r)
        self.batch_size = Histogram("triage_batch_size", "Messages per encoder call.",
                                    buckets=(1, 2, 4, 8, 16, 32, 64, 128), registry=r)
        self.queue_depth = Gauge("triage_queue_depth", "Requests waiting for the encoder.",
                                 registry=r)
        self.rejected = Counter("triage_queue_rejections_total",
                                "Requests refused with 429 because the queue was full.", registry=r)
        self.reloads = Counter("triage_model_reloads_total", "Model reloads.", ["outcome"],
                               registry=r)
        self.model_info = Gauge("triage_model_info", "The served model (value 1).",
                                ["version", "encoder"], registry=r)
        self._recent: deque[bool] = deque(maxlen=REVIEW_WINDOW)
        self._flagged = 0
        self._lock = Lock()

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route).observe(seconds)

    def observe_stage(self, stage: str, seconds: float) -> None:
        self.stage.labels(stage).observe(seconds)

    def observe_analyses(self, results: Iterable[Mapping[str, Any]]) -> None:
        """Count one ``Analysis.to_dict()`` per analysed message: labels and needs_review."""
        for res in results:
            self.analyses.inc()
            for head in ("department", "urgency"):
                pred = res.get(head)
                if isinstance(pred, Mapping):
                    self.predictions.labels(head, str(pred.get("label"))).inc()
            flagged = bool(res.get("needs_review"))
            if flagged:
                self.needs_review.inc()
            with self._lock:
                if len(self._recent) == REVIEW_WINDOW:
                    self._flagged -= self._recent[0]
                self._recent.append(flagged)
                self._flagged += flagged
                self.needs_review_rate.set(self._flagged / len(self._recent))

    def set_model(self, version: str, encoder: str) -> None:
        self.model_info.clear()
        self.model_info.labels(version, encoder).set(1)

    def render(self) -> bytes:
        return generate_latest(self.registry)

"""Prometheus metrics of one service process (its own registry, so tests can run several apps).

Requests by route and status, a latency histogram, errors by stable error code, and gauges read
from the runtime at scrape time: models loaded per task, swaps applied and the age of the
verified cache when the registry is unreachable.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class ServiceMetrics:
    """The counters the routes update and the gauges sampled from the runtime."""

    def __init__(self, models_loaded: Callable[[], dict[str, int]], cache_age_s: Callable[[], float]) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "gsco_hub_requests", "HTTP requests served", ["route", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "gsco_hub_request_seconds",
            "HTTP request latency",
            ["route"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=self.registry,
        )
        self.errors = Counter(
            "gsco_hub_errors", "Error answers by error code", ["code"], registry=self.registry
        )
        self.swaps = Counter("gsco_hub_pool_swaps", "Pool changes picked up", registry=self.registry)
        self.diagnoses = Counter("gsco_hub_diagnoses", "Decisions returned", ["task"], registry=self.registry)
        loaded = Gauge("gsco_hub_models_loaded", "Specialists serving", ["task"], registry=self.registry)
        self._models_loaded = models_loaded
        self._loaded = loaded
        Gauge(
            "gsco_hub_cache_age_seconds",
            "Age of the last registry sync the pool serves from (0 when live)",
            registry=self.registry,
        ).set_function(cache_age_s)

    def render(self) -> bytes:
        for task, count in self._models_loaded().items():
            self._loaded.labels(task=task).set(count)
        return generate_latest(self.registry)

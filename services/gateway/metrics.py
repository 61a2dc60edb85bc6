"""Prometheus metrics of one gateway: per-scorer latency and outcomes, pool size, restarts, queue depth.

Each app owns its own `CollectorRegistry` (not the process-global one), so several apps in one
process, as in the tests, never collide.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from rewardstack.services.workers.pool import PoolStats

LATENCY_BUCKETS_S = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class _PoolCollector(Collector):
    def __init__(self, stats: Callable[[], PoolStats | None]) -> None:
        self._stats = stats

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        stats = self._stats()
        if stats is None:
            return
        yield GaugeMetricFamily("rewardstack_pool_size", "Configured scorer worker processes", value=stats.size)
        yield GaugeMetricFamily("rewardstack_pool_alive", "Scorer worker processes alive", value=stats.alive)
        yield GaugeMetricFamily("rewardstack_pool_busy", "Scorer worker processes running a call", value=stats.busy)
        yield GaugeMetricFamily("rewardstack_queue_depth", "Scorer calls waiting for a worker", value=stats.queued_calls)
        yield CounterMetricFamily("rewardstack_worker_restarts", "Workers replaced (killed, crashed or recycled)", value=stats.restarts)
        yield CounterMetricFamily("rewardstack_worker_timeouts", "Calls killed at their deadline", value=stats.timeouts)


class GatewayMetrics:
    def __init__(self, pool_stats: Callable[[], PoolStats | None]) -> None:
        self.registry = CollectorRegistry()
        self.scorer_latency = Histogram(
            "rewardstack_scorer_latency_seconds", "Latency of one scorer on one item", ["scorer"],
            buckets=LATENCY_BUCKETS_S, registry=self.registry,
        )
        self.scorer_outcomes = Counter(
            "rewardstack_scorer_outcomes", "Component outcomes by scorer and status", ["scorer", "status"],
            registry=self.registry,
        )
        self.items = Counter("rewardstack_items", "Items scored, by item status", ["status"], registry=self.registry)
        self.requests = Counter("rewardstack_score_requests", "Score requests answered", registry=self.registry)
        self.registry.register(_PoolCollector(pool_stats))

    def render(self) -> bytes:
        return generate_latest(self.registry)

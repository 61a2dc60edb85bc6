"""Prometheus metrics of one sandbox app, in its own registry (several apps may share a process)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector


class _RestartsCollector(Collector):
    """Executor restarts as a counter, read from the pool at scrape time."""

    def __init__(self, metrics: SandboxMetrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterator[CounterMetricFamily]:
        yield CounterMetricFamily("rewardstack_sandbox_executor_restarts", "Executors restarted since start.",
                                  value=self._metrics.executor_restarts())


class SandboxMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.runs = Counter("rewardstack_sandbox_executions_total", "Executions by language and verdict/status.",
                            ["language", "verdict"], registry=self.registry)
        self.rejected = Counter("rewardstack_sandbox_rejected_total", "Requests refused with 429 because the queue was full.",
                                registry=self.registry)
        self.compile_cache = Counter("rewardstack_sandbox_compile_cache_total", "Compiled-binary cache lookups (hit, miss, shared).",
                                     ["result"], registry=self.registry)
        self.run_seconds = Histogram("rewardstack_sandbox_execution_seconds", "Time of one execution on a slot, queueing excluded.",
                                     ["language"], registry=self.registry,
                                     buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
        self.waiting = Gauge("rewardstack_sandbox_waiting_executions", "Executions waiting for a slot.", registry=self.registry)
        self.running = Gauge("rewardstack_sandbox_running_executions", "Executions running now.", registry=self.registry)
        self.slots_alive = Gauge("rewardstack_sandbox_slots_alive", "Executor slots alive.", registry=self.registry)
        # set by the app once its executor pool exists
        self.executor_restarts: Callable[[], int] = lambda: 0
        self.registry.register(_RestartsCollector(self))

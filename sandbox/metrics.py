"""Prometheus metrics of one sandbox app, in its own registry (several apps may share a process)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class SandboxMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.runs = Counter("sandbox_executions_total", "Executions by language and verdict/status.",
                            ["language", "verdict"], registry=self.registry)
        self.rejected = Counter("sandbox_rejected_total", "Requests refused with 429 because the queue was full.",
                                registry=self.registry)
        self.compile_cache = Counter("sandbox_compile_cache_total", "Compiled-binary cache lookups (hit, miss, shared).",
                                     ["result"], registry=self.registry)
        self.run_seconds = Histogram("sandbox_execution_seconds", "Time of one execution on a slot, queueing excluded.",
                                     ["language"], registry=self.registry,
                                     buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
        self.waiting = Gauge("sandbox_waiting_executions", "Executions waiting for a slot.", registry=self.registry)
        self.running = Gauge("sandbox_running_executions", "Executions running now.", registry=self.registry)
        self.slots_alive = Gauge("sandbox_slots_alive", "Executor slots alive.", registry=self.registry)
        self.restarts = Gauge("sandbox_executor_restarts", "Executors restarted since start.", registry=self.registry)

"""Prometheus metrics of one model server app, in its own `CollectorRegistry` (several apps share a
test process; the global registry would collide).

Per model: requests and items by outcome, forward-pass latency, items per pass, real tokens and
tokens computed (`padded_tokens`; the ratio is the padding the batcher could not avoid, 1 for
packed passes), and the queue depth read at scrape time. Labels are the served model names
only, never a name taken from a request path.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from rewardstack.services.model_server.batcher import PassObserver, PassRecord

FORWARD_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
BATCH_SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


class _QueueCollector(Collector):
    """`rewardstack_model_queue_depth{model}`, read from the batchers when scraped."""

    def __init__(self, depths: Callable[[], Mapping[str, int]]) -> None:
        self._depths = depths

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily("rewardstack_model_queue_depth", "Items waiting for a forward pass or in one", labels=["model"])
        for model, depth in self._depths().items():
            family.add_metric([model], depth)
        yield family


class ModelServerMetrics:
    """`depths` returns each loaded model's queue depth (empty while the models load)."""

    def __init__(self, depths: Callable[[], Mapping[str, int]]) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "rewardstack_model_requests", "Score requests by model and outcome (ok, error, too_large)",
            ["model", "outcome"], registry=self.registry,
        )
        self.items = Counter(
            "rewardstack_model_items", "Items by model and outcome (ok, too_long, error)",
            ["model", "outcome"], registry=self.registry,
        )
        self.forward_seconds = Histogram(
            "rewardstack_model_forward_seconds", "Duration of one forward pass (failed passes included)",
            ["model"], buckets=FORWARD_BUCKETS_S, registry=self.registry,
        )
        self.batch_size = Histogram(
            "rewardstack_model_batch_size", "Items per forward pass", ["model"],
            buckets=BATCH_SIZE_BUCKETS, registry=self.registry,
        )
        self.real_tokens = Counter(
            "rewardstack_model_real_tokens", "Tokens of the items put through forward passes", ["model"], registry=self.registry,
        )
        self.padded_tokens = Counter(
            "rewardstack_model_padded_tokens", "Tokens computed by forward passes: longest x items when padded, the real tokens when packed",
            ["model"], registry=self.registry,
        )
        self.failed_passes = Counter(
            "rewardstack_model_failed_passes", "Forward passes that raised", ["model"], registry=self.registry,
        )
        self.registry.register(_QueueCollector(depths))

    def pass_observer(self, model: str) -> PassObserver:
        """What model `model`'s batcher calls after each forward pass."""
        forward, size = self.forward_seconds.labels(model), self.batch_size.labels(model)
        real, padded, failed = self.real_tokens.labels(model), self.padded_tokens.labels(model), self.failed_passes.labels(model)

        def observe(record: PassRecord) -> None:
            forward.observe(record.seconds)
            size.observe(record.sequences)
            real.inc(record.real_tokens)
            padded.inc(record.padded_tokens)
            if record.failed:
                failed.inc()

        return observe

    def render(self) -> bytes:
        return generate_latest(self.registry)

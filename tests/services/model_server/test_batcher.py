"""The dynamic batcher: planning, combining concurrent requests, failures that stay contained."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from rewardstack.services.model_server.backends.base import Backend, Prepared
from rewardstack.services.model_server.backends.reward import RewardBackend
from rewardstack.services.model_server.batcher import DynamicBatcher, PassRecord, plan_batches
from rewardstack.services.model_server.config import BatchingConfig
from rewardstack.services.model_server.schema import ModelItem, ModelOutcome
from rewardstack.services.model_server.served import ServedModels, UnknownModel
from tests.services.model_server.fixtures import MAX_LENGTH, tiny_specs

REQUESTS = [
    [ModelItem(prompt="first request", response="short"), ModelItem(prompt="q", response="a much longer response " * 4)],
    [ModelItem(prompt="second", response="medium length answer")],
    [ModelItem(prompt=None, response="x"), ModelItem(prompt="third", response="y" * 50), ModelItem(prompt="z", response="z")],
]


@pytest.mark.parametrize(
    ("lengths", "batch_tokens", "max_batch_size", "expected"),
    [
        pytest.param([5, 1, 3], 100, 10, [[1, 2, 0]], id="one-pass-sorted-by-length"),
        pytest.param([40, 40, 40, 40], 80, 10, [[0, 1], [2, 3]], id="padded-token-budget"),
        pytest.param([1, 1, 1], 100, 2, [[0, 1], [2]], id="max-batch-size"),
        pytest.param([500, 20, 30], 80, 10, [[1, 2], [0]], id="oversized-gets-its-own-pass"),
        pytest.param([80, 20, 90, 10], 180, 10, [[3, 1], [0, 2]], id="short-with-short-long-with-long"),
    ],
)
def test_plan_batches(lengths: list[int], batch_tokens: int, max_batch_size: int, expected: list[list[int]]) -> None:
    config = BatchingConfig(batch_tokens=batch_tokens, max_batch_size=max_batch_size)
    assert plan_batches(lengths, config) == expected


def test_concurrent_requests_are_combined_into_one_pass(reward_path: Path, guard_path: Path) -> None:
    measure = RewardBackend(reward_path, max_length=MAX_LENGTH)
    total = sum(p.length for r in REQUESTS for p in measure.prepare(r))  # type: ignore[union-attr]
    # flush exactly when everything has arrived; the long wait only matters if it never does
    batching = BatchingConfig(batch_tokens=8192, flush_tokens=total, max_wait_ms=10_000)

    async def scenario() -> tuple[list[list[ModelOutcome]], int, list[int]]:
        async with ServedModels.open(tiny_specs(reward_path, guard_path, batching)) as models:
            results = await asyncio.gather(*(models.score("helpfulness", r) for r in REQUESTS))
            stats = models.batchers["helpfulness"].stats
            return results, stats.forward_passes, stats.sequences

    results, passes, sequences = asyncio.run(scenario())
    assert passes == 1 and sequences == sum(len(r) for r in REQUESTS)
    for request, outcomes in zip(REQUESTS, results, strict=True):
        alone = [measure.forward([p])[0].score for p in measure.prepare(request)]  # type: ignore[list-item]
        assert [o.score for o in outcomes] == pytest.approx(alone, abs=1e-4)


def test_unknown_model_is_named(reward_path: Path, guard_path: Path) -> None:
    async def scenario() -> None:
        async with ServedModels.open(tiny_specs(reward_path, guard_path)) as models:
            with pytest.raises(UnknownModel, match="no model 'nope'; served: helpfulness, safety"):
                await models.score("nope", REQUESTS[0])

    asyncio.run(scenario())


class Exploding(Backend):
    """Fails any pass that contains the response "boom": a model fault, not the batcher's."""

    kind, max_length, scale = "test", 100, "1.0"

    def prepare(self, items: Sequence[ModelItem]) -> list[Prepared | ModelOutcome]:
        return [Prepared(1, item.response) for item in items]

    def forward(self, batch: Sequence[Prepared]) -> list[ModelOutcome]:
        if any(p.payload == "boom" for p in batch):
            raise RuntimeError("CUDA error: device-side assert triggered")
        return [ModelOutcome(score=1.0) for _ in batch]


def test_a_failed_pass_fails_its_items_and_the_batcher_keeps_serving() -> None:
    backend = Exploding()

    async def scenario() -> None:
        with ThreadPoolExecutor(1) as executor:
            async with DynamicBatcher(backend, BatchingConfig(max_wait_ms=0), executor) as batcher:
                with pytest.raises(RuntimeError, match="forward pass failed: RuntimeError: CUDA error"):
                    await batcher.submit(backend.prepare([ModelItem(response="boom")]))  # type: ignore[arg-type]
                outcomes = await batcher.submit(backend.prepare([ModelItem(response="fine")]))  # type: ignore[arg-type]
                assert [o.score for o in outcomes] == [1.0]

    asyncio.run(scenario())


def test_every_pass_is_reported_to_the_observer_failed_ones_too() -> None:
    backend, records = Exploding(), []

    async def scenario() -> None:
        with ThreadPoolExecutor(1) as executor:
            async with DynamicBatcher(backend, BatchingConfig(max_wait_ms=0), executor, on_pass=records.append) as batcher:
                with pytest.raises(RuntimeError, match="forward pass failed"):
                    await batcher.submit(backend.prepare([ModelItem(response="boom")]))  # type: ignore[arg-type]
                await batcher.submit(backend.prepare([ModelItem(response="a"), ModelItem(response="b")]))  # type: ignore[arg-type]
                assert batcher.stats.forward_passes == 1 and batcher.stats.sequences == 2  # totals: good passes only

    asyncio.run(scenario())
    assert [(r.sequences, r.real_tokens, r.padded_tokens, r.failed) for r in records] == [(1, 1, 1, True), (2, 2, 2, False)]
    assert all(isinstance(r, PassRecord) and r.seconds >= 0 for r in records)


def test_depth_counts_items_waiting_for_a_pass() -> None:
    backend = Exploding()

    async def scenario() -> None:
        with ThreadPoolExecutor(1) as executor:
            async with DynamicBatcher(backend, BatchingConfig(max_wait_ms=10_000, flush_tokens=64), executor) as batcher:
                assert batcher.depth == 0
                first = asyncio.ensure_future(batcher.submit(backend.prepare([ModelItem(response="a"), ModelItem(response="b")])))  # type: ignore[arg-type]
                await asyncio.sleep(0.05)  # taken by the collector, which waits for 64 tokens
                assert batcher.depth == 2
                await batcher.submit([Prepared(62, "c")])  # the flush: all three in one pass
                await first
                assert batcher.depth == 0

    asyncio.run(scenario())


def test_shutdown_fails_waiting_requests_instead_of_leaving_them_hanging() -> None:
    backend = Exploding()

    async def scenario() -> None:
        with ThreadPoolExecutor(1) as executor:
            batcher = DynamicBatcher(backend, BatchingConfig(max_wait_ms=10_000, flush_tokens=1_000), executor)
            async with batcher:
                pending = asyncio.ensure_future(batcher.submit(backend.prepare([ModelItem(response="wait")])))  # type: ignore[arg-type]
                await asyncio.sleep(0.05)  # taken by the collector, which waits for company
            with pytest.raises(RuntimeError, match="shutting down"):
                await pending

    asyncio.run(scenario())

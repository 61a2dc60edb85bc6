"""Dynamic batching: combine concurrent requests into length-sorted forward passes.

OpenRLHF's `serve_rm` runs each request's batch as it arrives, in arrival order, with torch
called inside the async handler, so concurrent requests never share a pass and long and short
sequences are padded together. Here every request puts its prepared items on one queue per
model; a single loop takes what is waiting, until `flush_tokens` real tokens are queued or the
oldest item has waited `max_wait_ms`, sorts it by length and cuts it into passes of at most
`batch_tokens` computed tokens: for a padded backend the longest x count, for a packed one (one
row, no padding; `backends/packing.py`) the real tokens. Forward passes run on the model's own
thread, so the event loop keeps accepting requests (which then join the next flush) while the
model works.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass

from rewardstack.services.model_server.backends.base import Backend, Prepared
from rewardstack.services.model_server.config import BatchingConfig
from rewardstack.services.model_server.schema import ModelOutcome

log = logging.getLogger(__name__)

POLL_S = 0.001


@dataclass(slots=True)
class _Waiting:
    prepared: Prepared
    future: asyncio.Future[ModelOutcome]
    enqueued_at: float


@dataclass
class BatcherStats:
    """Running totals, for tests and benchmarks (metrics get every pass through `on_pass`)."""

    forward_passes: int = 0
    sequences: int = 0
    padded_tokens: int = 0
    real_tokens: int = 0


@dataclass(frozen=True, slots=True)
class PassRecord:
    """One forward pass, as the batcher saw it: what the `/metrics` histograms and counters read."""

    sequences: int
    real_tokens: int
    padded_tokens: int  # tokens the pass computed: longest x count when padded, the real ones when packed
    seconds: float
    failed: bool


PassObserver = Callable[[PassRecord], None]


def computed_tokens(lengths: Sequence[int], *, packed: bool) -> int:
    """Tokens a pass over sequences of `lengths` computes: all of them packed, longest x count padded."""
    return sum(lengths) if packed else max(lengths, default=0) * len(lengths)


def plan_batches(lengths: Sequence[int], config: BatchingConfig, *, packed: bool = False) -> list[list[int]]:
    """Indices grouped into passes: sorted by length, each pass within `batch_tokens` computed
    tokens (`computed_tokens`) and `max_batch_size` sequences. A sequence longer than the budget
    gets a pass of its own."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    passes: list[list[int]] = []
    current: list[int] = []
    tokens = 0  # real tokens in `current`
    for i in order:
        # sorted ascending, so this item is the longest of the pass it joins
        cost = tokens + lengths[i] if packed else lengths[i] * (len(current) + 1)
        if current and (cost > config.batch_tokens or len(current) >= config.max_batch_size):
            passes.append(current)
            current, tokens = [], 0
        current.append(i)
        tokens += lengths[i]
    if current:
        passes.append(current)
    return passes


class DynamicBatcher:
    """One per served model. `await submit(items)` returns one outcome per item, in order."""

    def __init__(self, backend: Backend, config: BatchingConfig, executor: Executor, on_pass: PassObserver | None = None) -> None:
        self.backend, self.config, self.executor = backend, config, executor
        self.on_pass = on_pass
        self.stats = BatcherStats()
        self._queue: asyncio.Queue[_Waiting] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._inflight: list[_Waiting] = []  # taken from the queue, not answered yet

    async def __aenter__(self) -> DynamicBatcher:
        self._task = asyncio.create_task(self._run(), name=f"batcher-{self.backend.kind}")
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        left = list(self._inflight)
        while not self._queue.empty():
            left.append(self._queue.get_nowait())
        for waiting in left:
            if not waiting.future.done():
                waiting.future.set_exception(RuntimeError("the model server is shutting down"))

    @property
    def depth(self) -> int:
        """Items waiting for a forward pass or in one: queued, or taken by the current flush and unanswered."""
        return self._queue.qsize() + sum(1 for w in self._inflight if not w.future.done())

    async def submit(self, prepared: Sequence[Prepared]) -> list[ModelOutcome]:
        if self._task is None or self._task.done():
            raise RuntimeError("the batcher is not running")
        loop = asyncio.get_running_loop()
        futures = []
        for p in prepared:
            future: asyncio.Future[ModelOutcome] = loop.create_future()
            self._queue.put_nowait(_Waiting(p, future, loop.time()))
            futures.append(future)
        try:
            return list(await asyncio.gather(*futures))
        finally:
            for f in futures:  # a cancelled request leaves no work behind
                f.cancel()

    async def _collect(self) -> list[_Waiting]:
        """Wait for work, then gather until the token budget or the oldest item's wait runs out."""
        loop = asyncio.get_running_loop()
        first = await self._queue.get()
        taken = self._inflight = [first]  # visible to __aexit__ from here on
        tokens = first.prepared.length
        deadline = first.enqueued_at + self.config.max_wait_ms / 1000
        while tokens < self.config.flush_tokens:
            if self._queue.empty():
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                # short sleeps rather than wait_for(queue.get()): a get that completes as the
                # timeout fires can lose its item on Python < 3.12
                await asyncio.sleep(min(remaining, POLL_S))
                continue
            item = self._queue.get_nowait()
            taken.append(item)
            tokens += item.prepared.length
        return [w for w in taken if not w.future.done()]

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            taken = await self._collect()
            for indices in plan_batches([w.prepared.length for w in taken], self.config, packed=self.backend.layout.packed):
                group = [taken[i] for i in indices if not taken[i].future.done()]
                if not group:
                    continue
                started = time.perf_counter()
                try:
                    outcomes = await loop.run_in_executor(self.executor, self.backend.forward, [w.prepared for w in group])
                except Exception as exc:  # a failed pass fails its items, never the loop
                    log.exception("forward pass of %d sequences failed", len(group))
                    self._record(group, time.perf_counter() - started, failed=True)
                    for w in group:
                        if not w.future.done():
                            w.future.set_exception(RuntimeError(f"model forward pass failed: {type(exc).__name__}: {exc}"))
                    continue
                self._record(group, time.perf_counter() - started, failed=False)
                for w, outcome in zip(group, outcomes, strict=True):
                    if not w.future.done():
                        w.future.set_result(outcome)

    def _record(self, group: Sequence[_Waiting], seconds: float, *, failed: bool) -> None:
        lengths = [w.prepared.length for w in group]
        packed = self.backend.layout.packed
        record = PassRecord(len(group), sum(lengths), computed_tokens(lengths, packed=packed), seconds, failed)
        if not failed:
            self.stats.forward_passes += 1
            self.stats.sequences += record.sequences
            self.stats.real_tokens += record.real_tokens
            self.stats.padded_tokens += record.padded_tokens
        if self.on_pass is not None:
            self.on_pass(record)

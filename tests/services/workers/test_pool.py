"""The killable pool on its own: deadlines kill only the late call, crashes are errors, the pool refills."""

from __future__ import annotations

import asyncio

import pytest

from rewardstack.services.workers.pool import Call, PoolClosed, ScorerPool, TaskFailed, TaskTimeout, WorkerCrashed
from tests.services.workers.calls import add, die, pid, spin, unpicklable


async def refilled(pool: ScorerPool) -> None:
    for _ in range(600):
        if pool.stats().alive == pool.size:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the pool did not refill")


def test_a_timeout_costs_only_the_late_call() -> None:
    async def main() -> None:
        async with ScorerPool(1) as pool:
            futures = pool.submit([Call(add, (1, 1), 5), Call(spin, (), 0.3), Call(add, (2, 2), 5)])
            results = await asyncio.gather(*futures, return_exceptions=True)
            assert results[0] == 2 and results[2] == 4
            assert isinstance(results[1], TaskTimeout)
            await refilled(pool)
            assert pool.stats().timeouts == 1 and pool.stats().restarts == 1

    asyncio.run(main())


def test_crash_raised_call_and_unpicklable_result_are_errors() -> None:
    async def main() -> None:
        async with ScorerPool(1) as pool:
            with pytest.raises(WorkerCrashed, match="exit code"):
                await pool.run(die, deadline_s=5)
            with pytest.raises(TaskFailed, match="unsendable"):
                await pool.run(unpicklable, deadline_s=5)
            with pytest.raises(TaskFailed, match="TypeError"):
                await pool.run(add, 1, "x", deadline_s=5)
            assert await pool.run(add, 2, 3, deadline_s=5) == 5

    asyncio.run(main())


def test_killed_workers_are_replaced_by_new_processes() -> None:
    async def main() -> None:
        async with ScorerPool(2) as pool:
            before = set(pool.worker_pids())
            await asyncio.gather(*pool.submit([Call(spin, (), 0.2)]), *pool.submit([Call(spin, (), 0.2)]), return_exceptions=True)
            await refilled(pool)
            after = set(pool.worker_pids())
            assert len(after) == 2 and not before & after
            assert await pool.run(pid, deadline_s=5) in after

    asyncio.run(main())


def test_start_by_refuses_calls_that_could_not_start_in_time() -> None:
    async def main() -> None:
        async with ScorerPool(1) as pool:
            loop = asyncio.get_running_loop()
            blocker = pool.submit([Call(spin, (), 0.5)])
            late = pool.submit([Call(add, (1, 1), 5)], start_by=loop.time() + 0.1)
            with pytest.raises(TaskTimeout, match="batch deadline"):
                await late[0]
            await asyncio.gather(*blocker, return_exceptions=True)

    asyncio.run(main())


def test_close_fails_queued_calls_and_refuses_new_ones() -> None:
    async def main() -> None:
        pool = ScorerPool(1)
        await pool.__aenter__()
        running = pool.submit([Call(spin, (), 30)])
        queued = pool.submit([Call(add, (1, 1), 5)])
        await pool.close()
        for future in (*running, *queued):
            with pytest.raises(PoolClosed):
                await future
        with pytest.raises(PoolClosed):
            pool.submit([Call(add, (1, 1), 5)])

    asyncio.run(main())

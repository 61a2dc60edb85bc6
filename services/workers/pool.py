"""A process pool for CPU scorers that nothing can hang.

Why not `concurrent.futures.ProcessPoolExecutor`: it cannot stop a running call. A sympy
simplification of `9^{9^{9^9}}` holds the GIL and ignores every thread, asyncio or signal-based
timeout; the only reliable stop is to kill the process from outside. So each worker is a
pre-started process we own; when a call runs past its deadline the pool SIGKILLs the worker,
answers that call with `TaskTimeout`, starts a replacement and carries on.

Shape:
- a *job* is a list of calls sent to one worker in one message (one IPC round trip for, say, all
  CPU scorers of a few items); the worker answers each call as it finishes, so every call has its
  own deadline and a timeout costs only that call: the calls after it go back to the queue;
- jobs wait in one queue per owner (one owner per HTTP request) served round-robin, so one huge
  request cannot starve a small one;
- a worker is recycled after `max_tasks_per_worker` calls or when its resident memory passes
  `max_memory_mb`, and it runs under an address-space rlimit so a runaway call fails with
  MemoryError instead of taking the machine;
- the event loop never blocks: results arrive through `loop.add_reader` on each worker's pipe,
  and processes are started and reaped in threads.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import multiprocessing
import os
import resource
import signal
import time
from collections import deque
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

log = logging.getLogger(__name__)

__all__ = [
    "Call",
    "PoolClosed",
    "PoolSaturated",
    "PoolStats",
    "ScorerPool",
    "TaskFailed",
    "TaskTimeout",
    "WorkerCrashed",
    "WorkerOutOfMemory",
]


class PoolError(Exception):
    """Base of the pool's errors."""


class TaskTimeout(PoolError):
    """The call ran past its deadline (its worker was killed), or could not start before the batch deadline."""


class WorkerCrashed(PoolError):
    """The worker died during the call for a reason other than our kill: infrastructure, not a verdict."""


class WorkerOutOfMemory(PoolError):
    """The call raised MemoryError under the worker's address-space limit."""


class TaskFailed(PoolError):
    """The call raised an exception: a scorer bug. The message carries the exception's type and text."""


class PoolSaturated(PoolError):
    """More calls are queued than `max_queued_calls`; the caller should back off (HTTP 503)."""


class PoolClosed(PoolError):
    """The pool is shutting down."""


@dataclass(frozen=True, slots=True)
class Call:
    """One function call to run in a worker. `fn` and `args` must pickle; `fn` by reference."""

    fn: Callable[..., Any]
    args: tuple[Any, ...]
    deadline_s: float


@dataclass(slots=True)
class _Job:
    calls: list[Call]
    futures: list[asyncio.Future[Any]]
    owner: Hashable
    start_by: float | None  # loop time after which the job is not started at all
    next_index: int = 0  # first call not yet answered

    def pending(self) -> Iterable[tuple[Call, asyncio.Future[Any]]]:
        return zip(self.calls[self.next_index :], self.futures[self.next_index :])


@dataclass(slots=True)
class _Worker:
    process: multiprocessing.process.BaseProcess
    conn: Connection
    job: _Job | None = None
    timer: asyncio.TimerHandle | None = None
    calls_done: int = 0
    retiring: bool = False


@dataclass(frozen=True, slots=True)
class PoolStats:
    size: int
    alive: int
    busy: int
    queued_calls: int
    restarts: int
    timeouts: int


@dataclass
class _Counters:
    restarts: int = 0
    timeouts: int = 0
    queued_calls: int = 0
    owners: itertools.count = field(default_factory=itertools.count)


def _resident_kb() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * (os.sysconf("SC_PAGE_SIZE") // 1024)


def _worker_main(conn: Connection, address_space_mb: int) -> None:
    """Worker process: run calls until told to stop. Answers ("ok"|"raised"|"oom", payload, rss_kb, ms)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    if address_space_mb > 0:
        limit = address_space_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):
            return
        if job is None:
            return
        for fn, args in job:
            started = time.perf_counter()
            try:
                answer: tuple[str, Any] = ("ok", fn(*args))
            except MemoryError:
                answer = ("oom", "MemoryError")
            except Exception as exc:  # a scorer bug: reported, never scored
                answer = ("raised", f"{type(exc).__name__}: {exc}")
            elapsed_ms = (time.perf_counter() - started) * 1000
            try:
                conn.send((*answer, _resident_kb(), elapsed_ms))
            except Exception as exc:  # e.g. an unpicklable result
                conn.send(("raised", f"unsendable result: {type(exc).__name__}: {exc}", _resident_kb(), elapsed_ms))


class ScorerPool:
    """Pre-started worker processes running `Call`s with per-call deadlines enforced by killing.

    Use as `async with ScorerPool(workers=2) as pool: await pool.run(...)`.
    """

    def __init__(
        self,
        workers: int | None = None,
        *,
        max_tasks_per_worker: int = 5000,
        max_memory_mb: int = 1024,
        max_queued_calls: int = 200_000,
        preload: Sequence[str] = (),
    ) -> None:
        self.size = workers or os.cpu_count() or 1
        if self.size < 1:
            raise ValueError("workers must be >= 1")
        self.max_tasks_per_worker = max_tasks_per_worker
        self.max_memory_mb = max_memory_mb
        self.max_queued_calls = max_queued_calls
        # forkserver: a clean, single-threaded parent to fork workers from (forking the server's
        # threaded process is unsafe), with scorer modules imported once so a replacement starts in ms.
        self._ctx = multiprocessing.get_context("forkserver")
        if preload:
            self._ctx.set_forkserver_preload(list(preload))
        self._workers: list[_Worker] = []
        self._queues: dict[Hashable, deque[_Job]] = {}
        self._counters = _Counters()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False
        self._spawning = 0
        self._background: set[asyncio.Task[Any]] = set()

    # -- lifecycle ---------------------------------------------------------------------------

    async def __aenter__(self) -> ScorerPool:
        self._loop = asyncio.get_running_loop()
        started = await asyncio.gather(*(asyncio.to_thread(self._start_process) for _ in range(self.size)))
        for process, conn in started:
            self._adopt(process, conn)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for jobs in self._queues.values():
            for job in jobs:
                self._fail_pending(job, PoolClosed("the pool is shutting down"))
        self._queues.clear()
        workers, self._workers = self._workers, []
        for worker in workers:
            if worker.job is not None:
                self._fail_pending(worker.job, PoolClosed("the pool is shutting down"))
            self._detach(worker)
            worker.process.kill()
        await asyncio.gather(*(asyncio.to_thread(w.process.join, 5) for w in workers))
        for task in list(self._background):
            task.cancel()

    def _start_process(self) -> tuple[multiprocessing.process.BaseProcess, Connection]:
        parent, child = self._ctx.Pipe(duplex=True)
        # The address-space limit is a backstop well above the recycle bound.
        process = self._ctx.Process(
            target=_worker_main, args=(child, self.max_memory_mb * 4), daemon=True, name="rewardstack-scorer"
        )
        process.start()
        child.close()
        return process, parent

    def _adopt(self, process: multiprocessing.process.BaseProcess, conn: Connection) -> None:
        assert self._loop is not None
        if self._closed:
            process.kill()
            return
        worker = _Worker(process, conn)
        self._workers.append(worker)
        self._loop.add_reader(conn.fileno(), self._on_readable, worker)
        self._dispatch()

    def _detach(self, worker: _Worker) -> None:
        if worker.timer is not None:
            worker.timer.cancel()
            worker.timer = None
        if self._loop is not None:
            with contextlib.suppress(Exception):
                self._loop.remove_reader(worker.conn.fileno())
        with contextlib.suppress(Exception):
            worker.conn.close()

    def _replace(self, worker: _Worker, *, kill: bool) -> None:
        """Remove `worker` (killing it if asked), reap it in a thread and start a replacement."""
        self._detach(worker)
        if worker in self._workers:
            self._workers.remove(worker)
        if kill:
            worker.process.kill()
        self._counters.restarts += 1
        if self._closed:
            return
        self._spawning += 1
        self._spawn_in_background(worker)

    def _spawn_in_background(self, old: _Worker) -> None:
        async def respawn() -> None:
            try:
                await asyncio.to_thread(old.process.join, 5)
                while not self._closed:
                    try:
                        process, conn = await asyncio.to_thread(self._start_process)
                    except Exception:  # fork failure: keep trying, the pool must return to full size
                        log.exception("could not start a scorer worker; retrying")
                        await asyncio.sleep(0.5)
                        continue
                    self._adopt(process, conn)
                    return
            finally:
                self._spawning -= 1

        task = asyncio.ensure_future(respawn())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # -- submitting --------------------------------------------------------------------------

    def new_owner(self) -> Hashable:
        """A fresh fairness key, e.g. one per HTTP request."""
        return next(self._counters.owners)

    def submit(
        self, calls: Sequence[Call], *, owner: Hashable = None, start_by: float | None = None
    ) -> list[asyncio.Future[Any]]:
        """Queue `calls` as one job; returns one future per call, resolved in any order.

        Raises PoolSaturated when the queue is over its bound, PoolClosed after close().
        """
        if self._closed:
            raise PoolClosed("the pool is shutting down")
        if self._loop is None:
            raise RuntimeError("use the pool inside `async with`")
        self.check_capacity(len(calls))
        futures = [self._loop.create_future() for _ in calls]
        if calls:
            self._enqueue(_Job(list(calls), futures, owner, start_by))
            self._dispatch()
        return futures

    def check_capacity(self, calls: int) -> None:
        """Raise PoolSaturated unless `calls` more calls fit in the queue: check a whole batch before submitting any."""
        if self._counters.queued_calls + calls > self.max_queued_calls:
            raise PoolSaturated(f"{self._counters.queued_calls} calls queued, {calls} more asked; limit {self.max_queued_calls}")

    async def run(self, fn: Callable[..., Any], *args: Any, deadline_s: float, owner: Hashable = None) -> Any:
        """Run one call and return its result (raises TaskTimeout, WorkerCrashed, TaskFailed, ...)."""
        (future,) = self.submit([Call(fn, args, deadline_s)], owner=owner)
        return await future

    def _enqueue(self, job: _Job, *, front: bool = False) -> None:
        queue = self._queues.setdefault(job.owner, deque())
        if front:
            queue.appendleft(job)
        else:
            queue.append(job)
        self._counters.queued_calls += len(job.calls) - job.next_index

    def _next_job(self) -> _Job | None:
        """Round-robin over owners: take the first owner's oldest job, then move that owner last."""
        while self._queues:
            owner = next(iter(self._queues))
            queue = self._queues.pop(owner)
            job = queue.popleft()
            if queue:
                self._queues[owner] = queue
            self._counters.queued_calls -= len(job.calls) - job.next_index
            if all(f.done() for _, f in job.pending()):
                continue  # every caller went away
            assert self._loop is not None
            if job.start_by is not None and self._loop.time() >= job.start_by:
                self._fail_pending(job, TaskTimeout("the batch deadline passed before this call could start"))
                continue
            return job
        return None

    def _dispatch(self) -> None:
        for worker in self._workers:
            if worker.job is None and not worker.retiring:
                job = self._next_job()
                if job is None:
                    return
                self._start_job(worker, job)

    def _start_job(self, worker: _Worker, job: _Job) -> None:
        worker.job = job
        payload = [(c.fn, c.args) for c in job.calls[job.next_index :]]
        try:
            worker.conn.send(payload)
        except (OSError, ValueError) as exc:  # the worker died while idle
            log.warning("scorer worker %s unreachable: %s", worker.process.pid, exc)
            worker.job = None
            self._enqueue(job, front=True)
            self._replace(worker, kill=True)
            return
        self._arm_timer(worker)

    def _arm_timer(self, worker: _Worker) -> None:
        assert self._loop is not None and worker.job is not None
        if worker.timer is not None:
            worker.timer.cancel()
        deadline_s = worker.job.calls[worker.job.next_index].deadline_s
        worker.timer = self._loop.call_later(deadline_s, self._on_deadline, worker)

    # -- results -----------------------------------------------------------------------------

    def _on_readable(self, worker: _Worker) -> None:
        try:
            kind, payload, resident_kb, _elapsed_ms = worker.conn.recv()
        except (EOFError, OSError, ValueError):
            self._on_worker_died(worker)
            return
        job = worker.job
        if job is None:  # nothing was asked of it: treat as broken
            self._replace(worker, kill=True)
            return
        future = job.futures[job.next_index]
        job.next_index += 1
        worker.calls_done += 1
        if not future.done():
            if kind == "ok":
                future.set_result(payload)
            elif kind == "oom":
                future.set_exception(WorkerOutOfMemory(payload))
            else:
                future.set_exception(TaskFailed(payload))
        recycle = (
            kind == "oom"
            or worker.calls_done >= self.max_tasks_per_worker
            or resident_kb > self.max_memory_mb * 1024
        )
        if job.next_index < len(job.calls):
            if recycle:  # the rest of the job goes to a fresh worker
                worker.job = None
                self._enqueue(job, front=True)
                self._retire(worker)
            else:
                self._arm_timer(worker)
            return
        worker.job = None
        if worker.timer is not None:
            worker.timer.cancel()
            worker.timer = None
        if recycle:
            self._retire(worker)
        self._dispatch()

    def _retire(self, worker: _Worker) -> None:
        """Stop an idle worker politely and replace it."""
        worker.retiring = True
        with contextlib.suppress(Exception):
            worker.conn.send(None)
        self._replace(worker, kill=False)
        self._dispatch()

    def _on_deadline(self, worker: _Worker) -> None:
        worker.timer = None
        job = worker.job
        if job is None:
            return
        self._counters.timeouts += 1
        call = job.calls[job.next_index]
        future = job.futures[job.next_index]
        job.next_index += 1
        if not future.done():
            future.set_exception(TaskTimeout(f"killed after {call.deadline_s:g} s"))
        worker.job = None
        self._replace(worker, kill=True)
        if job.next_index < len(job.calls):
            self._enqueue(job, front=True)
        self._dispatch()

    def _on_worker_died(self, worker: _Worker) -> None:
        job = worker.job
        worker.job = None
        code = worker.process.exitcode
        if job is not None and job.next_index < len(job.calls):
            future = job.futures[job.next_index]
            job.next_index += 1
            if not future.done():
                future.set_exception(WorkerCrashed(f"scorer worker died (exit code {code})"))
            if job.next_index < len(job.calls):
                self._enqueue(job, front=True)
        self._replace(worker, kill=True)
        self._dispatch()

    def _fail_pending(self, job: _Job, exc: Exception) -> None:
        for _, future in job.pending():
            if not future.done():
                future.set_exception(exc)
        job.next_index = len(job.calls)

    # -- introspection -----------------------------------------------------------------------

    def stats(self) -> PoolStats:
        return PoolStats(
            size=self.size,
            alive=sum(1 for w in self._workers if w.process.is_alive()),
            busy=sum(1 for w in self._workers if w.job is not None),
            queued_calls=self._counters.queued_calls,
            restarts=self._counters.restarts,
            timeouts=self._counters.timeouts,
        )

    def worker_pids(self) -> list[int]:
        return [w.process.pid for w in self._workers if w.process.pid is not None]

"""The service side of the warm executors: one `Slot` per core, and the `ExecutorPool` that hands them out.

Each slot owns one executor process (`sandbox/zygote.py`) living in its own namespaces. The pool
gives a slot to one execution at a time, FIFO; executions waiting for a slot are bounded
(`max_queued_runs`), and a request that would pass the bound is refused up front with
`PoolSaturated` (the API answers 429 with `Retry-After`) instead of queueing without end.

An executor that dies or stops answering is killed and restarted; the execution it was serving
gets `ExecutorFailed`, which the API reports as `sandbox_error`, never as a verdict.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from abc import ABC, abstractmethod
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Hashable
from pathlib import Path
from typing import Any

from rewardstack.sandbox import protocol
from rewardstack.sandbox.cgroups import CgroupTree, create_tree
from rewardstack.sandbox.languages import available_languages
from rewardstack.sandbox.settings import SandboxSettings

log = logging.getLogger(__name__)

MODULES = ("protocol", "isolation", "values", "harness", "zygote")  # the executor's modules, in import order
# Both executors' bootstraps (here and `containers.py`) end with this: the modules sent in `boot`
# become the package `sandbox`, imported in order, without any file of the service's.
LOAD_MODULES = f"""
package = types.ModuleType("sandbox")
package.__path__ = []
sys.modules["sandbox"] = package
for name in {MODULES!r}:
    module = types.ModuleType("sandbox." + name)
    module.__package__ = "sandbox"
    sys.modules[module.__name__] = module
    setattr(package, name, module)
    exec(compile(boot["modules"][name], "sandbox/" + name + ".py", "exec"), module.__dict__)
"""
# The local executor's command line: it reads its modules and configuration from stdin, so no
# host path or configuration is on a command line or in a code object a run could read.
BOOTSTRAP = f"""
import json, os, sys, types
def read(n):
    data = b""
    while len(data) < n:
        chunk = os.read(0, n - len(data))
        if not chunk:
            raise SystemExit(1)
        data += chunk
    return data
size = b""
while not size.endswith(b"\\n"):
    size += read(1)
boot = json.loads(read(int(size)))
{LOAD_MODULES}config = boot.pop("config")
del boot, size
sys.modules["sandbox.zygote"].main(config)
"""
RUNTIME_PATHS = ("/usr", "/bin", "/lib", "/lib32", "/lib64", "/libx32", "/sbin")
START_TIMEOUT_S = 30.0
REPLY_MARGIN_S = 10.0  # the executor enforces wall_s itself; this only catches a stuck executor
CPUS_PER_SLOT = 1.0  # each slot's cgroup CPU quota: a run's processes share one core


def module_sources() -> dict[str, str]:
    """The executor's modules, sent to it at start (it never imports from the service's tree)."""
    here = Path(__file__).resolve().parent
    return {name: (here / f"{name}.py").read_text() for name in MODULES}


class ExecutorFailed(Exception):
    """The executor process failed (not the program): the execution's outcome is unknown."""


class PoolSaturated(Exception):
    """Too many executions already wait for a slot."""

    def __init__(self, waiting: int, retry_after_s: int) -> None:
        self.waiting = waiting
        self.retry_after_s = retry_after_s
        super().__init__(f"{waiting} executions are already waiting for a slot")


def python_prefix(python: str) -> str:
    """The interpreter's installation prefix: it must be visible (read-only) inside the sandbox."""
    if os.path.realpath(python) == os.path.realpath(sys._base_executable):  # type: ignore[attr-defined]
        return sys.base_prefix
    out = subprocess.run([python, "-I", "-S", "-c", "import sys; print(sys.base_prefix)"],
                         capture_output=True, text=True, timeout=30, check=True)
    return out.stdout.strip()


class Slot(ABC):
    """One executor and its control channel; used by one execution at a time.

    Subclasses start the executor and open the channel: `ProcessSlot` (a local process in its own
    namespaces, the default) and `containers.ContainerSlot` (a container through the Docker API).
    """

    def __init__(self, index: int) -> None:
        self.index = index
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.seccomp = False
        self.pending: asyncio.Future[tuple[dict[str, Any], protocol.Blobs]] | None = None
        self.timeout_s = REPLY_MARGIN_S

    @abstractmethod
    async def _open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """Start the executor; return its channel."""

    @abstractmethod
    async def _close(self) -> None:
        """Stop the executor for good (kill, remove)."""

    @abstractmethod
    def _running(self) -> bool: ...

    async def start(self) -> None:
        try:
            self.reader, self.writer = await self._open()
            line = await asyncio.wait_for(self.reader.readline(), START_TIMEOUT_S)
            header, _ = protocol.split_header(line)
        except (OSError, asyncio.TimeoutError, ValueError) as exc:
            await self.stop()
            raise ExecutorFailed(f"executor {self.index} did not start (isolation refused?): {exc!r}") from exc
        if not header.get("ready"):
            await self.stop()
            raise ExecutorFailed(f"executor {self.index} did not start: {header}")
        self.seccomp = bool(header.get("seccomp"))

    @property
    def alive(self) -> bool:
        return self.reader is not None and not self.reader.at_eof() and self._running()

    async def stop(self) -> None:
        with contextlib.suppress(Exception):
            await self._close()
        self.reader = self.writer = None

    async def execute(self, header: dict[str, Any], blobs: protocol.Blobs) -> tuple[dict[str, Any], protocol.Blobs]:
        """Send one execution and wait for its reply.

        The executor reads only the control frame (limits and sizes); the run reads the rest
        itself. If this call is cancelled the reply stays pending in `self.pending`: the pool
        asks the executor to stop the run (`cancel`) and collects it, so the slot is reused
        without a restart.
        """
        reader, writer = self.reader, self.writer
        if reader is None or writer is None or not self._running():
            raise ExecutorFailed(f"executor {self.index} is not running")
        limits = header["limits"]
        run_header = {k: v for k, v in header.items() if k not in ("limits", "output_name")}
        payload = protocol.encode(run_header, blobs)
        control = {"limits": limits, "payload": len(payload), "output_name": header.get("output_name")}
        self.timeout_s = float(limits["wall_s"]) + REPLY_MARGIN_S
        try:
            writer.write(protocol.control_frame(control) + payload)
            self.pending = asyncio.ensure_future(self._read_reply(reader))
            await writer.drain()
            return await asyncio.wait_for(asyncio.shield(self.pending), self.timeout_s)
        except (asyncio.TimeoutError, ConnectionError, EOFError, ValueError, asyncio.IncompleteReadError) as exc:
            raise ExecutorFailed(f"executor {self.index} failed: {type(exc).__name__}: {exc}") from exc

    async def cancel(self) -> bool:
        """Stop the run in progress and collect its reply; False when the executor must restart."""
        pending, writer = self.pending, self.writer
        if pending is None or writer is None:
            return False
        try:
            if not pending.done():
                writer.write(protocol.CANCEL)
                await writer.drain()
            await asyncio.wait_for(pending, self.timeout_s)
            return True
        except Exception:  # noqa: BLE001 - any failure here means a fresh executor
            return False

    @staticmethod
    async def _read_reply(stream: asyncio.StreamReader) -> tuple[dict[str, Any], protocol.Blobs]:
        line = await stream.readline()
        if not line:
            raise EOFError("executor closed its channel")
        header, parts = protocol.split_header(line)
        blobs = {name: await stream.readexactly(length) for name, length in parts}
        if "error" in header:
            raise ExecutorFailed(f"executor error: {header['error']}")
        return header, blobs


class ProcessSlot(Slot):
    """The default backend: `sandbox/zygote.py` as a local process that isolates itself."""

    def __init__(self, index: int, config: dict[str, Any], python: str, sources: dict[str, str]) -> None:
        super().__init__(index)
        self.config = config
        self.python = python
        self.sources = sources
        self.process: asyncio.subprocess.Process | None = None

    async def _open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        self.process = await asyncio.create_subprocess_exec(
            self.python, "-I", "-S", "-c", BOOTSTRAP,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            env={"LANG": "C.UTF-8"}, limit=1 << 20,
        )
        assert self.process.stdout is not None and self.process.stdin is not None
        boot = json.dumps({"modules": self.sources, "config": self.config}).encode()
        self.process.stdin.write(b"%d\n" % len(boot) + boot)
        await self.process.stdin.drain()
        return self.process.stdout, self.process.stdin

    def _running(self) -> bool:
        return self.process is not None and self.process.returncode is None

    def kill(self) -> None:
        """Kill the executor process (fault injection in tests; the pool restarts it)."""
        if self.process is not None and self.process.returncode is None:
            self.process.kill()

    async def _close(self) -> None:
        process, self.process = self.process, None
        if process is None:
            return
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
        await asyncio.wait_for(process.wait(), 10)


class ExecutorPool:
    """`slots` warm executors, shared fairly between requests.

    `execute(..., owner=...)` waits for a free slot. A freed slot goes to the waiting owner (a
    request) that holds the fewest slots, ties to the one that started waiting first; so one
    request with many tests (or a slow compile) cannot hold every slot while another waits, and
    a request waits at most for one run of another to end before it gets a slot of its own
    (as long as there are no more requests than slots).
    """

    def __init__(self, settings: SandboxSettings) -> None:
        self.settings = settings
        self.python = settings.python or sys._base_executable  # type: ignore[attr-defined]
        self._free: list[Slot] = []
        self._waiters: dict[Hashable, deque[asyncio.Future[Slot]]] = {}
        self._held: Counter[Hashable] = Counter()
        self._slots: list[Slot] = []
        self._root: str | None = None
        self._cgroups: CgroupTree | None = None
        self.waiting = 0
        self.running = 0
        self.restarts = 0
        self._mean_run_s = 0.01
        self._background: set[asyncio.Task[None]] = set()
        self._closers: list[Callable[[], Awaitable[None]]] = []
        self.started = False

    def _config(self, index: int) -> dict[str, Any]:
        s = self.settings
        host_uid = s.host_uid_base + index
        prefix = python_prefix(self.python)
        ro_paths = [p for p in RUNTIME_PATHS if os.path.lexists(p)]
        if not any(prefix == p or prefix.startswith(p + "/") for p in ro_paths):
            ro_paths.append(prefix)
        ro_paths += [p for lang in available_languages(s).values() for p in lang.ro_paths]
        ro_paths += [p for p in s.extra_ro_paths if os.path.exists(p)]
        maps = f"0 {os.getuid()} 1\n{s.run_uid} {host_uid} 1\n"
        assert self._cgroups is not None
        return {
            "root": self._root, "ro_paths": ro_paths,
            "uid_map": maps, "gid_map": f"0 {os.getgid()} 1\n{s.run_uid} {host_uid} 1\n",
            "run_uid": s.run_uid, "scratch_mb": s.scratch_mb, "file_mb": s.file_mb,
            "open_files": s.open_files, "stack_mb": s.stack_mb, "preload": list(s.preload),
            "cgroup": self._cgroups.spec(index), "cpus": CPUS_PER_SLOT,
        }

    async def start(self) -> None:
        """Start every slot. Raises `CgroupUnavailable` (namespaces backend) where no cgroup can
        limit whole runs, and `ExecutorFailed` where an executor cannot isolate itself."""
        if self.settings.backend == "containers":
            from rewardstack.sandbox.containers import ContainerBackend

            backend = ContainerBackend(self.settings)
            self._closers.append(backend.close)
            self._slots = list(await backend.slots())
        else:
            self._cgroups = create_tree(self.settings.slots, CPUS_PER_SLOT)
            self._root = tempfile.mkdtemp(prefix="rewardstack-sandbox-root-")
            sources = module_sources()
            self._slots = [ProcessSlot(i, self._config(i), self.python, sources) for i in range(self.settings.slots)]
        await asyncio.gather(*(slot.start() for slot in self._slots))
        self._free = list(self._slots)
        self.started = True

    async def close(self) -> None:
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(*(slot.stop() for slot in self._slots), return_exceptions=True)
        for close in self._closers:
            await close()
        if self._root:
            shutil.rmtree(self._root, ignore_errors=True)
        if self._cgroups is not None:
            await asyncio.to_thread(self._cgroups.remove)

    @property
    def seccomp(self) -> bool:
        return bool(self._slots) and all(slot.seccomp for slot in self._slots)

    @property
    def alive(self) -> int:
        return sum(slot.alive for slot in self._slots)

    @property
    def cgroup_version(self) -> int | None:
        return self._cgroups.version if self._cgroups is not None else None

    def admit(self, executions: int) -> None:
        """Refuse a request whose executions would overflow the wait queue; see `PoolSaturated`.

        A request that finds nobody waiting is always admitted, whatever its size.
        """
        waiting = self.waiting
        if waiting and waiting + executions > self.settings.max_queued_runs:
            retry_after = max(1, math.ceil((waiting + executions) * self._mean_run_s / max(1, len(self._slots))))
            raise PoolSaturated(waiting, retry_after)

    # --- fair hand-out of slots ---------------------------------------------------------------

    async def _acquire(self, owner: Hashable) -> Slot:
        if self._free and not self._waiters:
            self._held[owner] += 1
            return self._free.pop()
        future: asyncio.Future[Slot] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(owner, deque()).append(future)
        self.waiting += 1
        try:
            return await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self._release(future.result(), owner)  # handed to us just as we were cancelled
            else:
                queue = self._waiters.get(owner)
                if queue is not None and future in queue:
                    queue.remove(future)
                    if not queue:
                        del self._waiters[owner]
            raise
        finally:
            self.waiting -= 1

    def _unhold(self, owner: Hashable) -> None:
        self._held[owner] -= 1
        if self._held[owner] <= 0:
            del self._held[owner]

    def _release(self, slot: Slot, owner: Hashable) -> None:
        self._unhold(owner)
        self._give(slot)

    def _give(self, slot: Slot) -> None:
        """Hand a usable slot to the waiting owner holding the fewest, else keep it free."""
        while self._waiters:
            owner = min(self._waiters, key=lambda o: self._held[o])  # dict order: first waiter wins ties
            queue = self._waiters[owner]
            future = queue.popleft()
            if not queue:
                del self._waiters[owner]
            if future.done():
                continue
            self._held[owner] += 1
            future.set_result(slot)
            return
        self._free.append(slot)

    async def execute(self, header: dict[str, Any], blobs: protocol.Blobs,
                      owner: Hashable = None) -> tuple[dict[str, Any], protocol.Blobs]:
        """Run one execution on a slot; `owner` (one per request) decides the fair share."""
        slot = await self._acquire(owner)
        self.running += 1
        started = time.monotonic()
        try:
            reply = await slot.execute(header, blobs)
        except ExecutorFailed:
            self.running -= 1
            self._unhold(owner)
            await slot.stop()
            self._background_task(self._restart(slot))
            raise
        except BaseException:
            # Cancelled mid-run (the caller gave up): stop the run, collect it, reuse the slot.
            self.running -= 1
            self._unhold(owner)
            self._background_task(self._settle(slot))
            raise
        self.running -= 1
        self._mean_run_s = 0.9 * self._mean_run_s + 0.1 * (time.monotonic() - started)
        self._release(slot, owner)
        return reply

    def _background_task(self, coroutine: Awaitable[None]) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)  # type: ignore[arg-type]
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _settle(self, slot: Slot) -> None:
        if slot.alive and await slot.cancel():
            self._give(slot)
            return
        await slot.stop()
        await self._restart(slot)

    async def _restart(self, slot: Slot) -> None:
        self.restarts += 1
        delay = 0.1
        while True:
            try:
                await slot.start()
            except ExecutorFailed:
                log.exception("restarting executor %d", slot.index)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            self._give(slot)
            return

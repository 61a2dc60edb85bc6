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
from abc import ABC, abstractmethod
import json
import logging
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from rewardstack.sandbox import protocol
from rewardstack.sandbox.languages import available_languages
from rewardstack.sandbox.settings import SandboxSettings

log = logging.getLogger(__name__)

ZYGOTE = Path(__file__).resolve().parent / "zygote.py"
IMPORT_ROOT = str(Path(__file__).resolve().parent.parent)
RUNTIME_PATHS = ("/usr", "/bin", "/lib", "/lib32", "/lib64", "/libx32", "/sbin")
START_TIMEOUT_S = 30.0
REPLY_MARGIN_S = 10.0  # the executor enforces wall_s itself; this only catches a stuck executor


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
        reader, writer = self.reader, self.writer
        if reader is None or writer is None or not self._running():
            raise ExecutorFailed(f"executor {self.index} is not running")
        timeout = float(header["limits"]["wall_s"]) + REPLY_MARGIN_S
        try:
            writer.write(protocol.encode(header, blobs))
            await writer.drain()
            return await asyncio.wait_for(self._read_reply(reader), timeout)
        except (asyncio.TimeoutError, ConnectionError, EOFError, ValueError, asyncio.IncompleteReadError) as exc:
            raise ExecutorFailed(f"executor {self.index} failed: {type(exc).__name__}: {exc}") from exc

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

    def __init__(self, index: int, config: dict[str, Any], python: str) -> None:
        super().__init__(index)
        self.config = config
        self.python = python
        self.process: asyncio.subprocess.Process | None = None

    async def _open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        self.process = await asyncio.create_subprocess_exec(
            self.python, "-I", "-S", str(ZYGOTE), json.dumps(self.config),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            env={"LANG": "C.UTF-8"}, limit=1 << 20,
        )
        assert self.process.stdout is not None and self.process.stdin is not None
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
    """`slots` warm executors; `execute` waits (FIFO) for a free one."""

    def __init__(self, settings: SandboxSettings) -> None:
        self.settings = settings
        self.python = settings.python or sys._base_executable  # type: ignore[attr-defined]
        self._idle: asyncio.Queue[Slot] = asyncio.Queue()
        self._slots: list[Slot] = []
        self._root: str | None = None
        self.waiting = 0
        self.running = 0
        self.restarts = 0
        self._mean_run_s = 0.01
        self._restarting: set[asyncio.Task[None]] = set()
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
        return {
            "import_root": IMPORT_ROOT, "root": self._root, "ro_paths": ro_paths,
            "uid_map": maps, "gid_map": f"0 {os.getgid()} 1\n{s.run_uid} {host_uid} 1\n",
            "run_uid": s.run_uid, "scratch_mb": s.scratch_mb, "file_mb": s.file_mb,
            "open_files": s.open_files, "stack_mb": s.stack_mb, "preload": list(s.preload),
        }

    async def start(self) -> None:
        if self.settings.backend == "containers":
            from rewardstack.sandbox.containers import ContainerBackend

            backend = ContainerBackend(self.settings)
            self._closers.append(backend.close)
            self._slots = list(await backend.slots())
        else:
            self._root = tempfile.mkdtemp(prefix="rewardstack-sandbox-root-")
            self._slots = [ProcessSlot(i, self._config(i), self.python) for i in range(self.settings.slots)]
        await asyncio.gather(*(slot.start() for slot in self._slots))
        for slot in self._slots:
            self._idle.put_nowait(slot)
        self.started = True

    async def close(self) -> None:
        for task in list(self._restarting):
            task.cancel()
        await asyncio.gather(*(slot.stop() for slot in self._slots), return_exceptions=True)
        for close in self._closers:
            await close()
        if self._root:
            shutil.rmtree(self._root, ignore_errors=True)

    @property
    def seccomp(self) -> bool:
        return bool(self._slots) and all(slot.seccomp for slot in self._slots)

    @property
    def alive(self) -> int:
        return sum(slot.alive for slot in self._slots)

    def admit(self, executions: int) -> None:
        """Refuse a request whose executions would overflow the wait queue; see `PoolSaturated`.

        A request that finds nobody waiting is always admitted, whatever its size.
        """
        waiting = self.waiting
        if waiting and waiting + executions > self.settings.max_queued_runs:
            retry_after = max(1, math.ceil((waiting + executions) * self._mean_run_s / max(1, len(self._slots))))
            raise PoolSaturated(waiting, retry_after)

    async def execute(self, header: dict[str, Any], blobs: protocol.Blobs) -> tuple[dict[str, Any], protocol.Blobs]:
        self.waiting += 1
        try:
            slot = await self._idle.get()
        finally:
            self.waiting -= 1
        self.running += 1
        started = time.monotonic()
        try:
            return await slot.execute(header, blobs)
        except ExecutorFailed:
            await slot.stop()
            raise
        except BaseException:
            # Cancelled mid-execution: the executor may still be busy with it; start a clean one.
            await slot.stop()
            raise
        finally:
            self.running -= 1
            self._mean_run_s = 0.9 * self._mean_run_s + 0.1 * (time.monotonic() - started)
            if slot.alive:
                self._idle.put_nowait(slot)
            else:
                task = asyncio.get_running_loop().create_task(self._restart(slot))
                self._restarting.add(task)
                task.add_done_callback(self._restarting.discard)

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
            self._idle.put_nowait(slot)
            return

"""The optional container backend: one warm, locked-down container per slot, via the Docker Engine API.

Selected with `REWARDSTACK_SANDBOX_BACKEND=containers`; needs the `containers` extra (`docker`
SDK) and an engine (Docker, or podman's Docker-compatible API:
`podman system service --time=0 unix:///run/podman/podman.sock` and
`REWARDSTACK_SANDBOX_DOCKER_HOST=unix:///run/podman/podman.sock`).

Each container runs with no network, a read-only root, a size-limited tmpfs `/tmp`, all
capabilities dropped, `no-new-privileges`, a pids and a memory limit, as an unprivileged uid of its
slot, and without any of the service's files: its command is a few lines of bootstrap that
connect to a unix socket in a per-slot directory (mounted read-only), receive the executor's
modules (`sandbox/zygote.py` and what it imports) over it, and serve as the container's pid 1,
forking per execution exactly as the namespaces backend does. The socket is removed as soon as
the executor has connected, so a program cannot reach the service through it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from rewardstack.sandbox.executors import LOAD_MODULES, START_TIMEOUT_S, ExecutorFailed, Slot, module_sources
from rewardstack.sandbox.settings import SandboxSettings

SOCKET_DIR = "/run/rewardstack"
BOOTSTRAP = f"""
import json, socket, sys, types
channel = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
channel.connect("{SOCKET_DIR}/control.sock")
channel_in = channel.makefile("rb")
boot = json.loads(channel_in.readline())
{LOAD_MODULES}sys.modules["sandbox.zygote"].main_container(boot["config"], channel, channel_in)
"""
LABEL = "rewardstack.sandbox"
log = logging.getLogger(__name__)


class ContainerBackend:
    """The Docker client and the container slots made with it."""

    def __init__(self, settings: SandboxSettings) -> None:
        self.settings = settings
        self._client: Any = None

    async def slots(self) -> list[Slot]:
        try:
            import docker
        except ImportError as exc:
            raise ExecutorFailed("the containers backend needs the `docker` package (pip install 'rewardstack[containers]')") from exc
        s = self.settings
        try:
            self._client = await asyncio.to_thread(
                lambda: docker.DockerClient(base_url=s.docker_host) if s.docker_host else docker.from_env())
            await asyncio.to_thread(self._client.ping)
        except Exception as exc:  # noqa: BLE001 - any engine failure means no backend
            raise ExecutorFailed(f"no container engine at {s.docker_host or 'DOCKER_HOST'}: {exc}") from exc
        sources = module_sources()
        return [ContainerSlot(i, s, self._client, sources) for i in range(s.slots)]

    async def close(self) -> None:
        if self._client is not None:
            await asyncio.to_thread(self._client.close)


class ContainerSlot(Slot):
    def __init__(self, index: int, settings: SandboxSettings, client: Any, sources: dict[str, str]) -> None:
        super().__init__(index)
        self.settings = settings
        self.client = client
        self.sources = sources
        self.uid = settings.host_uid_base + index  # distinct per slot: process limits are per uid
        self.container: Any = None
        self._dir: str | None = None

    def _config(self) -> dict[str, Any]:
        s = self.settings
        return {"backend": "containers", "run_uid": self.uid, "scratch_mb": s.scratch_mb, "file_mb": s.file_mb,
                "open_files": s.open_files, "stack_mb": s.stack_mb, "preload": list(s.preload)}

    def _run_container(self) -> Any:
        s = self.settings
        assert self._dir is not None
        return self.client.containers.run(
            s.container_image,
            command=[s.container_python, "-I", "-S", "-c", BOOTSTRAP],
            detach=True,
            network_mode="none",
            read_only=True,
            cap_drop=["ALL"],
            security_opt=["no-new-privileges"],
            pids_limit=4 * s.processes + 16,
            mem_limit=f"{s.max_memory_mb + s.scratch_mb + 256}m",
            memswap_limit=f"{s.max_memory_mb + s.scratch_mb + 256}m",  # no swap
            nano_cpus=1_000_000_000,  # one core per slot, as the namespaces backend's cgroup quota
            user=f"{self.uid}:{self.uid}",
            tmpfs={"/tmp": f"size={s.scratch_mb}m,mode=1777"},
            volumes={self._dir: {"bind": SOCKET_DIR, "mode": "ro"}},
            environment={},
            hostname="sandbox",
            working_dir="/tmp",
            labels={LABEL: str(self.index)},
        )

    async def _open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        self._dir = tempfile.mkdtemp(prefix="rewardstack-container-")
        os.chmod(self._dir, 0o755)
        path = os.path.join(self._dir, "control.sock")
        connected: asyncio.Future[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.get_running_loop().create_future()

        async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            if connected.done():
                writer.close()
            else:
                connected.set_result((reader, writer))

        server = await asyncio.start_unix_server(on_connect, path=path, limit=1 << 20)
        try:
            os.chmod(path, 0o666)
            self.container = await asyncio.to_thread(self._run_container)
            reader, writer = await asyncio.wait_for(connected, START_TIMEOUT_S)
        finally:
            server.close()
            with contextlib.suppress(OSError):
                os.unlink(path)
        writer.write(json.dumps({"modules": self.sources, "config": self._config()}).encode() + b"\n")
        await writer.drain()
        return reader, writer

    def _running(self) -> bool:
        return self.container is not None

    async def _close(self) -> None:
        writer, container, directory = self.writer, self.container, self._dir
        self.container, self._dir = None, None
        if container is not None:
            # Remove (kill) before closing the channel: a container caught mid-exit by a forced
            # removal was sometimes left behind by podman; retry once after it settles.
            for attempt in range(2):
                try:
                    await asyncio.to_thread(container.remove, force=True)
                    break
                except Exception as exc:  # noqa: BLE001 - the engine's error types vary
                    if attempt:
                        log.warning("could not remove sandbox container %s: %s", container.id, exc)
                    await asyncio.sleep(0.5)
        if writer is not None:
            writer.close()
        if directory is not None:
            shutil.rmtree(directory, ignore_errors=True)

"""The optional container backend, against podman's Docker-compatible API (marker `containers`).

Starts its own `podman system service` on a private socket and stops it afterwards; skipped when
podman, the `docker` SDK or the image is missing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from rewardstack.sandbox.app import create_sandbox_app
from tests.sandbox.helpers import judge, run, sandbox_settings
from tests.servers import running_server

pytestmark = pytest.mark.containers

IMAGE = "docker.io/library/python:3.11-slim"
HOST_UID_BASE = 230_000 + (os.getpid() % 1000) * 16
SLOTS = 2


@pytest.fixture(scope="module")
def docker_host() -> Iterator[str]:
    pytest.importorskip("docker", reason="the containers backend needs the docker SDK")
    if shutil.which("podman") is None:
        pytest.skip("podman is not installed")
    if subprocess.run(["podman", "image", "exists", IMAGE], capture_output=True).returncode != 0:
        pytest.skip(f"image {IMAGE} is not available locally")
    directory = tempfile.mkdtemp(prefix="rewardstack-podman-")
    socket_path = os.path.join(directory, "podman.sock")
    service = subprocess.Popen(["podman", "system", "service", "--time=0", f"unix://{socket_path}"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while not os.path.exists(socket_path):
            if service.poll() is not None or time.monotonic() > deadline:
                pytest.skip("podman system service did not start")
            time.sleep(0.05)
        yield f"unix://{socket_path}"
    finally:
        service.terminate()
        service.wait(timeout=30)
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="module")
def client(docker_host: str) -> Iterator[httpx.Client]:
    settings = sandbox_settings(backend="containers", docker_host=docker_host, container_image=IMAGE,
                                host_uid_base=HOST_UID_BASE, slots=SLOTS)
    with running_server(create_sandbox_app(settings)) as url, httpx.Client(base_url=url, timeout=120) as http:
        yield http


def _processes_of_slots() -> int:
    count = 0
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                status = Path(f"/proc/{entry}/status").read_text()
            except OSError:
                continue
            uid = int(next(line for line in status.splitlines() if line.startswith("Uid:")).split()[1])
            count += HOST_UID_BASE <= uid < HOST_UID_BASE + SLOTS
    return count


def test_runs_and_judges(client: httpx.Client) -> None:
    assert client.get("/readyz").json()["backend"] == "containers"
    assert run(client, "print(input()[::-1])", stdin="abc")["stdout"] == "cba\n"
    result = judge(client, code="def f(x):\n    return x * 2\n", mode="call", entry_point="f",
                   tests=[{"args": [i], "expected": 2 * i} for i in range(8)] + [{"args": [1], "expected": 3}])
    assert result["passed"] == 8 and result["verdict"] == "wrong_answer"


def test_unavailable_language_is_422(client: httpx.Client) -> None:
    response = client.post("/v1/run", json={"language": "cpp", "code": "int main(){}"})
    assert response.status_code == 422 and "language" in response.json()["detail"]


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        pytest.param("import socket\nsocket.create_connection(('1.1.1.1', 53), timeout=2)\n", "runtime_error", id="no-network"),
        pytest.param(f"open({str(Path(__file__).resolve())!r}).read()\n", "runtime_error", id="no-service-files"),
        pytest.param("open('/usr/evil', 'w')\n", "runtime_error", id="read-only-root"),
        pytest.param("import os\nwhile True:\n    os.fork()\n", "runtime_error", id="fork-bomb"),
        pytest.param("x = bytearray(1 << 33)\n", "memory_limit", id="memory-bomb"),
        pytest.param("import os\nos.system('kill -9 -1')\n", "runtime_error", id="kill-all"),
        pytest.param("import os\nos.system('sleep 300 &')\nprint('bg')\n", "ok", id="background-process"),
    ],
)
def test_attacks_are_contained(client: httpx.Client, code: str, expected: str) -> None:
    result = run(client, code, cpu_s=1, wall_s=5)
    assert result["status"] == expected, result
    assert _processes_of_slots() == SLOTS, "only the executors (one per container) may remain"
    assert run(client, "print(6 * 7)")["stdout"] == "42\n"


def test_control_socket_is_gone(client: httpx.Client) -> None:
    assert run(client, "import os\nprint(os.listdir('/run/rewardstack'))")["stdout"] == "[]\n"


def test_sysv_ipc_is_removed_between_runs(client: httpx.Client) -> None:
    shmget = "import ctypes\nprint(ctypes.CDLL(None).shmget(0x5EC, 4096, {flags}))"
    assert run(client, shmget.format(flags="0o1666"))["stdout"] != "-1\n"
    assert {run(client, shmget.format(flags="0o666"))["stdout"] for _ in range(2 * SLOTS)} == {"-1\n"}


def test_scratch_is_wiped_between_runs(client: httpx.Client) -> None:
    run(client, "import os\nos.makedirs('/tmp/a/b')\nopen('/tmp/a/b/f', 'w').write('x')\nos.chmod('/tmp/a', 0)\n")
    listings = {run(client, "import os\nprint(os.listdir('/tmp'))")["stdout"] for _ in range(2 * SLOTS)}
    assert listings == {"[]\n"}

"""Isolated Python test runs per second through the sandbox, against two ways of running tests without it.

All three run the same test (a HumanEval-sized program and one assert) with as many runs in flight
as the machine has cores, in one process, one after the other:

  (s) sandbox: `POST /v1/judge` on the sandbox app (in process, `httpx.ASGITransport`), each
      request carrying 16 tests; every test is a fork of a warm executor inside fresh-per-slot
      user/pid/net/mount/ipc/uts namespaces, with rlimits, seccomp and its own scratch tmpfs;
  (a) a fresh, unisolated `python3 -c PROGRAM` subprocess per test (what cheap harnesses do), with
      the system's `/usr/bin/python3` (it starts faster than the pyenv interpreter here, so the
      baseline is the stronger one; `--python` picks another);
  (b) a fresh container per test: `podman run --rm --network=none python:3.11-slim python3 -c ...`;
  (c) for information, the sandbox's optional containers backend (one warm container per slot,
      forking per test), through its own `podman system service` on a private socket.

The machine is shared, so (s) and (a) are measured in `--rounds` interleaved rounds and the best
of each is kept. Prints runs/s of each and the ratios (s)/(a) and (s)/(b) (targets: >= 4 and >= 50), then the time
to judge all of HumanEval (164 canonical solutions, one request each, all in flight at once).

    .venv/bin/python bench/sandbox_throughput.py [--runs 640] [--baseline-runs 64] [--container-runs 8] [--rounds 2]
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rewardstack.sandbox.app import create_sandbox_app  # noqa: E402
from rewardstack.sandbox.settings import SandboxSettings  # noqa: E402

HUMANEVAL = ROOT.parent / "shared" / "data" / "HumanEval.jsonl.gz"
PROGRAM = (
    "from typing import List\n\n"
    "def below_zero(operations: List[int]) -> bool:\n"
    "    balance = 0\n"
    "    for op in operations:\n"
    "        balance += op\n"
    "        if balance < 0:\n"
    "            return True\n"
    "    return False\n"
)
TEST = "assert below_zero([1, 2, -4, 5]) is True\nassert below_zero([1, 2, 3]) is False\n"
IMAGE = "docker.io/library/python:3.11-slim"
TESTS_PER_REQUEST = 16


async def sandbox_rate(http: httpx.AsyncClient, runs: int, in_flight: int) -> float:
    body = {"language": "python", "code": PROGRAM, "mode": "assert", "tests": [TEST] * TESTS_PER_REQUEST,
            "stop_on_first_failure": False}
    requests = max(1, runs // TESTS_PER_REQUEST)
    gate = asyncio.Semaphore(in_flight)

    async def one() -> None:
        async with gate:
            result = (await http.post("/v1/judge", json=body)).json()
            assert result["verdict"] == "accepted", result

    started = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(requests)))
    return requests * TESTS_PER_REQUEST / (time.perf_counter() - started)


async def subprocess_rate(argv_for: list[str], runs: int, in_flight: int) -> float:
    gate = asyncio.Semaphore(in_flight)

    async def one() -> None:
        async with gate:
            process = await asyncio.create_subprocess_exec(*argv_for, stdout=asyncio.subprocess.DEVNULL,
                                                           stderr=asyncio.subprocess.PIPE)
            _, err = await process.communicate()
            assert process.returncode == 0, err.decode()

    started = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(runs)))
    return runs / (time.perf_counter() - started)


def podman_ready() -> bool:
    if shutil.which("podman") is None:
        return False
    probe = subprocess.run(["podman", "image", "exists", IMAGE], capture_output=True)
    return probe.returncode == 0


@asynccontextmanager
async def podman_api() -> AsyncIterator[str]:
    """A private `podman system service` for the containers backend; stopped on exit."""
    directory = tempfile.mkdtemp(prefix="rewardstack-bench-podman-")
    socket_path = os.path.join(directory, "podman.sock")
    service = subprocess.Popen(["podman", "system", "service", "--time=0", f"unix://{socket_path}"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while not os.path.exists(socket_path):
            if service.poll() is not None:
                raise RuntimeError("podman system service did not start")
            await asyncio.sleep(0.05)
        yield f"unix://{socket_path}"
    finally:
        service.terminate()
        service.wait(timeout=30)
        shutil.rmtree(directory, ignore_errors=True)


async def containers_backend_rate(runs: int) -> float:
    async with podman_api() as docker_host:
        settings = SandboxSettings(backend="containers", docker_host=docker_host, container_image=IMAGE)
        app = create_sandbox_app(settings)
        async with app.router.lifespan_context(app):
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sandbox", timeout=600) as http:
                await sandbox_rate(http, TESTS_PER_REQUEST * settings.slots, settings.slots)  # warm-up
                return await sandbox_rate(http, runs, 2 * settings.slots)


async def humaneval_seconds(http: httpx.AsyncClient) -> float | None:
    if not HUMANEVAL.exists():
        return None
    with gzip.open(HUMANEVAL, "rt") as f:
        tasks = [json.loads(line) for line in f]

    async def one(task: dict) -> str:
        body = {"language": "python", "code": task["prompt"] + task["canonical_solution"], "mode": "assert",
                "tests": [task["test"] + f"\ncheck({task['entry_point']})\n"]}
        return (await http.post("/v1/judge", json=body)).json()["verdict"]

    started = time.perf_counter()
    verdicts = await asyncio.gather(*(one(t) for t in tasks))
    elapsed = time.perf_counter() - started
    assert verdicts.count("accepted") == len(tasks), verdicts
    return elapsed


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=640, help="sandbox test runs")
    parser.add_argument("--baseline-runs", type=int, default=64, help="fresh python3 subprocess runs")
    parser.add_argument("--container-runs", type=int, default=8, help="fresh podman container runs (0: skip)")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds of (s) and (a); the best of each counts")
    parser.add_argument("--python", default="/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys._base_executable,  # type: ignore[attr-defined]
                        help="interpreter of baseline (a)")
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    python = args.python
    print(f"machine: {cores} cores, load average {os.getloadavg()[0]:.2f}; interpreter {python}")

    settings = SandboxSettings()
    app = create_sandbox_app(settings)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sandbox", timeout=600) as http:
            await sandbox_rate(http, TESTS_PER_REQUEST * settings.slots, settings.slots)  # warm-up
            sandbox = fresh = 0.0
            for _ in range(args.rounds):
                sandbox = max(sandbox, await sandbox_rate(http, args.runs, 2 * settings.slots))
                fresh = max(fresh, await subprocess_rate([python, "-c", PROGRAM + TEST], args.baseline_runs, cores))
            print(f"(s) sandbox, isolated, {settings.slots} slots: {sandbox:8.1f} runs/s")
            print(f"(a) fresh python3 subprocess per test:  {fresh:8.1f} runs/s   ratio (s)/(a) = {sandbox / fresh:6.1f}x (target >= 4)")
            if args.container_runs and podman_ready():
                argv = ["podman", "run", "--rm", "--network=none", IMAGE, "python3", "-c", PROGRAM + TEST]
                container = await subprocess_rate(argv, args.container_runs, cores)
                print(f"(b) fresh podman container per test:    {container:8.1f} runs/s   ratio (s)/(b) = {sandbox / container:6.1f}x (target >= 50)")
                warm = await containers_backend_rate(args.runs)
                print(f"(c) sandbox, containers backend (warm):  {warm:8.1f} runs/s   ratio (c)/(b) = {warm / container:6.1f}x")
            else:
                print(f"(b), (c) skipped: podman or the image {IMAGE} is not available")
            seconds = await humaneval_seconds(http)
            if seconds is None:
                print("HumanEval: skipped, ../shared/data/HumanEval.jsonl.gz not found")
            else:
                print(f"HumanEval: all 164 canonical solutions judged (accepted) in {seconds:.2f} s")


if __name__ == "__main__":
    asyncio.run(main())

"""Rewards/s with 1 and with 2 gateway replicas on this machine, and the per-core figure.

The same bounded load (bench/load.py's checked workload: math + format items, half right, half
wrong) at the same concurrency, against 1 and then 2 gateway replicas, in one run; the 1-replica
run is the baseline of the ratio. Two ways to run the replicas:

    bench/scaling.py --mode compose     compose.yaml behind HAProxy (podman), one stack per count
    bench/scaling.py --mode processes   `rewardstack serve` processes on 127.0.0.1, spread by the
                                        client's own round-robin over their URLs (no engine needed)

Each replica gets the same number of scorer workers (--workers). "Per core" divides rewards/s by
the cores of this machine, the figure to size a deployment with. Every answer is checked (exactly
one correct reward per item), as in bench/load.py.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.compose_stack import ComposeStack, EngineUnavailable, build_images, free_port, setup_engine  # noqa: E402
from bench.load import PhaseResult, run_phase  # noqa: E402
from bench.workload import Workload  # noqa: E402
from rewardstack.client import AsyncRewardClient, RetryPolicy  # noqa: E402

SCORERS = ["math", "format"]


@contextmanager
def gateway_processes(replicas: int, workers: int) -> Iterator[list[str]]:
    """`replicas` gateways as processes on free loopback ports; stopped on exit."""
    executable = shutil.which("rewardstack", path=str(Path(sys.executable).parent)) or "rewardstack"
    with ExitStack() as stack:
        log = stack.enter_context(tempfile.TemporaryFile("w+"))
        urls = []
        for _ in range(replicas):
            port = free_port()
            process = subprocess.Popen([executable, "serve", "--host", "127.0.0.1", "--port", str(port),
                                        "--workers", str(workers), "--log-level", "warning"],
                                       cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
            stack.callback(lambda p=process: (p.terminate(), p.wait(timeout=30)))
            urls.append(f"http://127.0.0.1:{port}")
        deadline = time.monotonic() + 120
        for url in urls:
            while True:
                try:
                    if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    log.seek(0)
                    raise TimeoutError(f"gateway at {url} not ready within 120 s:\n{log.read()[-3000:]}")
                time.sleep(0.5)
        yield urls


@contextmanager
def compose_gateways(replicas: int, workers: int) -> Iterator[list[str]]:
    stack = ComposeStack(project=f"rewardstack-scale{replicas}", gateways=replicas, sandboxes=1, scorer_workers=workers)
    try:
        stack.up()
        stack.wait_ready(tuple(SCORERS))
        yield [stack.url]
    finally:
        stack.down()


async def measure(urls: list[str], args: argparse.Namespace, label: str) -> PhaseResult:
    workload = Workload.build(SCORERS, batch_items=args.batch_items)
    retry = RetryPolicy(max_attempts=4, cooldown_s=2.0)
    async with AsyncRewardClient(urls, retry=retry, chunk_size=args.batch_items, max_concurrency=1) as client:
        await client.check(SCORERS)
        await run_phase("warmup", client, workload, args.concurrency, 2.0, args.concurrency * 4)
        return await run_phase(label, client, workload, args.concurrency, args.duration_s, 10_000)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mode", choices=["compose", "processes"], default="processes")
    parser.add_argument("--build", action="store_true", help="with --mode compose: build the images first")
    parser.add_argument("--workers", type=int, default=1, help="scorer workers per gateway replica")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--duration-s", type=float, default=15.0)
    parser.add_argument("--batch-items", type=int, default=32)
    args = parser.parse_args(argv)
    if args.duration_s > 300:
        parser.error("keep runs bounded: --duration-s <= 300")
    replicas_of = compose_gateways if args.mode == "compose" else gateway_processes
    if args.mode == "compose":
        try:
            print(f"# {setup_engine()}")
        except EngineUnavailable as exc:
            print(f"SKIPPED: {exc}")
            return 0
        if args.build:
            build_images(("gateway", "sandbox", "models", "lb"))
    cores = os.cpu_count() or 1
    print(f"# mode {args.mode}; {cores} cores; {args.workers} scorer worker(s) per replica; concurrency {args.concurrency}; "
          f"{args.batch_items} items per request; {args.duration_s:.0f} s per count", flush=True)
    results: dict[int, PhaseResult] = {}
    for replicas in (1, 2):
        with replicas_of(replicas, args.workers) as urls:
            results[replicas] = asyncio.run(measure(urls, args, f"{replicas} gw"))
        print(results[replicas].line(), flush=True)
    one, two = results[1], results[2]
    ratio = two.rewards_per_s / one.rewards_per_s if one.rewards_per_s else float("nan")
    print(f"1 gateway : {one.rewards_per_s:8.1f} rewards/s = {one.rewards_per_s / cores:7.1f} per core")
    print(f"2 gateways: {two.rewards_per_s:8.1f} rewards/s = {two.rewards_per_s / cores:7.1f} per core = {ratio:.2f}x one gateway")
    clean = one.clean and two.clean
    print("RESULT:", "PASS (every item one correct reward)" if clean else "FAIL (failed, lost or wrong items above)")
    return 0 if clean else 1


if __name__ == "__main__":
    raise SystemExit(main())

"""Bounded load test, and fault test, of a running reward stack on loopback.

Sends batches of items whose correct rewards are known (half right, half wrong answers; code
that passes or fails its tests) through the trainer's `AsyncRewardClient` at a fixed concurrency
for a fixed duration, and checks every answer: each item must come back exactly once, `ok`, with
the expected value. Prints rewards/s and p50/p99 request latency, with the same load at
concurrency 1 (measured first, in the same run) as the baseline of the ratio.

    bench/load.py --url http://127.0.0.1:8000 --concurrency 8 --duration-s 20
    bench/load.py --compose --fault     # own compose stack: 2 gateways + 2 sandboxes, kill one of each

`--fault` (needs `--compose`): during the load phase one gateway replica and one sandbox replica
are killed with SIGKILL; the client's retries must still give every item exactly one correct
reward, and both replicas must come back and serve again (checked with one more batch).
Exit status 0 only when nothing was failed, lost, duplicated or wrong (and the stack recovered).
Traffic goes to 127.0.0.1 only; the run stops after --duration-s or --max-batches.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: make `trainer`, `services` and `bench` importable
    sys.path.insert(0, str(ROOT))

from bench.compose_stack import ComposeStack, EngineUnavailable, build_images, setup_engine  # noqa: E402
from bench.workload import Workload  # noqa: E402
from rewardstack.services.contract import ScoreBatchResult, Status  # noqa: E402
from rewardstack.client import AsyncRewardClient, RetryPolicy  # noqa: E402
from rewardstack.errors import RewardstackError  # noqa: E402

LOOPBACK = {"127.0.0.1", "localhost", "::1"}


@dataclass
class PhaseResult:
    name: str
    concurrency: int
    elapsed_s: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    sent: int = 0  # items sent
    rewarded: int = 0  # items back `ok` with the expected value
    failed: int = 0  # items back not `ok`, or in a batch the client gave up on
    timeouts: int = 0  # of those, items with a component `timeout` (a deadline passed while scoring)
    lost: int = 0  # items sent that no result names
    duplicated: int = 0  # items named by more than one result
    wrong: int = 0  # `ok` items whose value is not the known correct one
    errors: Counter[str] = field(default_factory=Counter)

    @property
    def rewards_per_s(self) -> float:
        return self.rewarded / self.elapsed_s if self.elapsed_s else 0.0

    @property
    def clean(self) -> bool:
        return self.sent > 0 and self.failed == self.lost == self.duplicated == self.wrong == 0

    def percentile_ms(self, q: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        if len(self.latencies_ms) == 1:
            return self.latencies_ms[0]
        return statistics.quantiles(self.latencies_ms, n=100, method="inclusive")[int(q) - 1]

    def line(self) -> str:
        return (f"{self.name:<10} conc {self.concurrency:>3}  {self.elapsed_s:6.1f} s  "
                f"{self.rewards_per_s:8.1f} rewards/s  p50 {self.percentile_ms(50):7.0f} ms  p99 {self.percentile_ms(99):7.0f} ms  "
                f"sent {self.sent}  ok {self.rewarded}  failed {self.failed}  timeouts {self.timeouts}  lost {self.lost}  "
                f"dup {self.duplicated}  wrong {self.wrong}" + (f"  errors {dict(self.errors)}" if self.errors else ""))


def check_batch(result: PhaseResult, workload: Workload, ids: list[str], answer: ScoreBatchResult) -> None:
    """Count one answer: each sent id exactly once, `ok`, with the known value of every component."""
    seen = Counter(r.id for r in answer.results)
    result.lost += sum(1 for i in ids if seen[i] == 0)
    result.duplicated += sum(n - 1 for n in seen.values() if n > 1)
    for item in answer.results:
        if item.status != Status.OK:
            result.failed += 1
            result.timeouts += any(c.status == Status.TIMEOUT for c in item.components.values())
            details = [f"{name}:{c.status.value}:{c.detail[:80]}" for name, c in item.components.items() if c.status != Status.OK]
            result.errors[";".join(details) or item.status.value] += 1
        elif workload.is_correct(item):
            result.rewarded += 1
        else:
            result.wrong += 1
            result.errors[f"wrong value for {item.id}: {item.reward}"] += 1


async def run_phase(name: str, client: AsyncRewardClient, workload: Workload, concurrency: int,
                    duration_s: float, max_batches: int, during: asyncio.Future[None] | None = None) -> PhaseResult:
    """`concurrency` loops send batches until the time or the batch budget is spent."""
    result = PhaseResult(name, concurrency)
    batches = iter(range(max_batches))
    started = time.perf_counter()
    stop_at = started + duration_s

    async def loop() -> None:
        for index in batches:
            if time.perf_counter() >= stop_at:
                return
            items, ids, scorers = workload.batch(f"{name}-{index}")
            result.sent += len(ids)
            t0 = time.perf_counter()
            try:
                answer = await client.score(items, scorers)
            except RewardstackError as exc:
                result.failed += len(ids)
                result.errors[f"{type(exc).__name__}: {str(exc)[:160]}"] += 1
                continue
            result.latencies_ms.append((time.perf_counter() - t0) * 1000)
            check_batch(result, workload, ids, answer)

    await asyncio.gather(*(loop() for _ in range(concurrency)))
    result.elapsed_s = time.perf_counter() - started
    if during is not None:
        await during
    return result


@dataclass
class FaultReport:
    killed: list[str] = field(default_factory=list)
    recovered_s: dict[str, float] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


async def inject_faults(stack: ComposeStack, duration_s: float, report: FaultReport) -> None:
    """Kill gateway replica 1 at 25 % of the phase and sandbox replica 1 at 50 %; wait for both to recover."""
    plan = [(0.25, "gateway", 8000), (0.5, "sandbox", 8100)]
    started = time.monotonic()
    restarts: list[tuple[str, int, int]] = []
    for at, service, port in plan:
        await asyncio.sleep(max(0.0, started + at * duration_s - time.monotonic()))
        names = stack.containers(service)
        if len(names) < 2:
            report.problems.append(f"{service}: {len(names)} replica(s), the fault test needs 2")
            continue
        restarts.append((names[0], await asyncio.to_thread(stack.kill, names[0]), port))
        report.killed.append(names[0])
    for name, before, port in restarts:
        try:
            report.recovered_s[name] = await asyncio.to_thread(stack.wait_recovered, name, before, port)
        except TimeoutError as exc:
            report.problems.append(str(exc).splitlines()[0])


async def run(args: argparse.Namespace, url: str, stack: ComposeStack | None) -> int:
    workload = Workload.build(args.scorers.split(","), batch_items=args.batch_items)
    retry = RetryPolicy(max_attempts=args.attempts, backoff_base_s=0.25, backoff_max_s=4.0, cooldown_s=2.0)
    async with AsyncRewardClient(url, retry=retry, chunk_size=args.batch_items, max_concurrency=1,
                                 api_token=args.api_token) as client:
        await client.check(workload.scorer_names)
        print(f"# {url}  scorers {','.join(workload.scorer_names)}  batch {args.batch_items} items", flush=True)
        baseline = await run_phase("baseline", client, workload, 1, args.baseline_s, args.max_batches)
        print(baseline.line(), flush=True)
        report = FaultReport()
        faults = None
        if args.fault:
            assert stack is not None
            faults = asyncio.ensure_future(inject_faults(stack, args.duration_s, report))
        load = await run_phase("fault" if args.fault else "load", client, workload, args.concurrency,
                               args.duration_s, args.max_batches, during=faults)
        print(load.line(), flush=True)
        ok = baseline.clean and load.clean
        if args.fault:
            after = await run_phase("recovered", client, workload, args.concurrency, 3.0, args.concurrency)
            print(after.line())
            print(f"killed {report.killed}; back and ready after "
                  + ", ".join(f"{n} {s:.1f} s" for n, s in report.recovered_s.items()))
            for problem in report.problems:
                print(f"PROBLEM: {problem}")
            ok = ok and after.clean and not report.problems and len(report.recovered_s) == 2
        ratio = load.rewards_per_s / baseline.rewards_per_s if baseline.rewards_per_s else float("nan")
        print(f"rewards/s at concurrency {args.concurrency}: {load.rewards_per_s:.1f} = {ratio:.2f}x the concurrency-1 "
              f"baseline ({baseline.rewards_per_s:.1f}); p50 {load.percentile_ms(50):.0f} ms, p99 {load.percentile_ms(99):.0f} ms")
        print(f"timeouts {baseline.timeouts + load.timeouts}, lost {baseline.lost + load.lost}")
        print("RESULT:", "PASS (no item failed, timed out, lost, duplicated or wrong)" if ok else "FAIL")
        if args.json:
            Path(args.json).write_text(json.dumps({"baseline": baseline.__dict__ | {"rewards_per_s": baseline.rewards_per_s},
                                                   "load": load.__dict__ | {"rewards_per_s": load.rewards_per_s},
                                                   "fault": report.__dict__, "ok": ok}, default=str, indent=1))
        return 0 if ok else 1


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000", help="a running stack (loopback only)")
    parser.add_argument("--compose", action="store_true", help="bring up an own compose stack (podman) and tear it down")
    parser.add_argument("--build", action="store_true", help="with --compose: build the images first")
    parser.add_argument("--fault", action="store_true", help="kill a gateway and a sandbox replica during the load (needs --compose)")
    parser.add_argument("--scorers", default="math,format,code", help="comma-separated scorers each item uses")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--duration-s", type=float, default=20.0)
    parser.add_argument("--baseline-s", type=float, default=5.0)
    parser.add_argument("--max-batches", type=int, default=5000, help="upper bound on batches per phase")
    parser.add_argument("--batch-items", type=int, default=32)
    parser.add_argument("--attempts", type=int, default=8, help="client attempts per batch (retries + failovers)")
    parser.add_argument("--api-token")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args(argv)
    if args.fault and not args.compose:
        parser.error("--fault needs --compose (it kills replicas of a stack it started)")
    host = urlparse(args.url).hostname
    if not args.compose and host not in LOOPBACK:
        parser.error(f"--url must be on loopback (127.0.0.1, localhost, ::1), not {host!r}")
    if args.duration_s > 600 or args.baseline_s > 120:
        parser.error("keep runs bounded: --duration-s <= 600, --baseline-s <= 120")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not args.compose:
        return asyncio.run(run(args, args.url, None))
    try:
        print(f"# {setup_engine()}", flush=True)
    except EngineUnavailable as exc:
        print(f"SKIPPED: {exc}")
        return 0
    if args.build:
        build_images()
    stack = ComposeStack(project="rewardstack-load")
    try:
        stack.up()
        stack.wait_ready(tuple(args.scorers.split(",")))
        return asyncio.run(run(args, stack.url, stack))
    finally:
        stack.down()


if __name__ == "__main__":
    raise SystemExit(main())

"""Gateway throughput against the in-process baseline (issue: gateway, "Must show").

Scores the same 512 GSM8K-style completions (half right, half wrong, R1 template) two ways, in one run:
  (a) in-process, `math_verify` in a plain loop, the way open-r1's accuracy reward calls it;
  (b) through `POST /v1/score` on a real `rewardstack serve` process, in batches of 256.
Prints items/s of each, the ratio (b)/(a), and p50/p99 item latency.

    .venv/bin/python bench/gateway_vs_inprocess.py [--items 512] [--batch 256] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "gsm8k_test.jsonl"


def completions(n: int, seed: int = 0) -> list[tuple[str, str]]:
    """(completion, gold) pairs: reasoning in <think>, the boxed answer in <answer>; every other one wrong."""
    rng = random.Random(seed)
    rows = [json.loads(line) for line in DATA.read_text().splitlines()]
    pairs = []
    for i in range(n):
        row = rows[i % len(rows)]
        reasoning, gold = row["answer"].rsplit("####", 1)
        gold = gold.strip().replace(",", "")
        answer = gold if i % 2 == 0 else str(int(float(gold)) + rng.randint(1, 9))
        pairs.append((f"<think>{reasoning.strip()}</think>\n<answer>The answer is $\\boxed{{{answer}}}$</answer>", row["answer"]))
    return pairs


def in_process(pairs: list[tuple[str, str]]) -> tuple[float, list[float], list[float]]:
    from math_verify import LatexExtractionConfig, parse, verify
    from math_verify.parser import NormalizationConfig

    config = [LatexExtractionConfig(
        normalization_config=NormalizationConfig(nits=False, malformed_operators=False, basic_latex=True,
                                                 boxed="all", units=True),
        boxed_match_priority=0, try_extract_without_anchor=False)]
    rewards, latencies = [], []
    started = time.perf_counter()
    for completion, gold in pairs:
        t0 = time.perf_counter()
        gold_parsed = parse("$" + gold.rsplit("####", 1)[1].strip() + "$", extraction_mode="first_match")
        answer = parse(completion, extraction_config=config, extraction_mode="first_match")
        rewards.append(float(verify(gold_parsed, answer)))
        latencies.append((time.perf_counter() - t0) * 1000)
    return time.perf_counter() - started, rewards, latencies


def through_gateway(url: str, pairs: list[tuple[str, str]], batch: int) -> tuple[float, list[float | None], list[float]]:
    rewards: list[float | None] = []
    latencies: list[float] = []
    with httpx.Client(base_url=url, timeout=300) as client:
        started = time.perf_counter()
        for start in range(0, len(pairs), batch):
            chunk = pairs[start : start + batch]
            t0 = time.perf_counter()
            body = {"items": [{"completion": c, "reference": g} for c, g in chunk], "scorers": {"math": {}}}
            response = client.post("/v1/score", json=body)
            response.raise_for_status()
            request_ms = (time.perf_counter() - t0) * 1000
            for result in response.json()["results"]:
                rewards.append(result["reward"])
                # an item's latency as the trainer sees it: the round trip of its batch
                latencies.append(request_ms)
        return time.perf_counter() - started, rewards, latencies


def start_gateway(port: int) -> subprocess.Popen[bytes]:
    process = subprocess.Popen([sys.executable, "-m", "rewardstack.services.cli", "serve", "--port", str(port), "--log-level", "warning"],
                               cwd=ROOT, env={**os.environ, "REWARDSTACK_ENABLED_SCORERS": "math"})
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz").status_code == 200:
                return process
        except httpx.TransportError:
            time.sleep(0.2)
    process.kill()
    raise SystemExit("the gateway did not start")


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=512)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--port", type=int, default=8917)
    args = parser.parse_args()
    if not DATA.exists():
        raise SystemExit(f"needs {DATA} (../shared/data)")
    pairs = completions(args.items)
    server = start_gateway(args.port)
    try:
        url = f"http://127.0.0.1:{args.port}"
        through_gateway(url, pairs[:32], 32)  # warm-up: imports in the workers
        in_process(pairs[:32])
        best_a = best_b = float("inf")
        for _ in range(args.repeats):  # interleaved, so both see the same machine noise
            seconds_a, rewards_a, lat_a = in_process(pairs)
            seconds_b, rewards_b, lat_b = through_gateway(url, pairs, args.batch)
            best_a, best_b = min(best_a, seconds_a), min(best_b, seconds_b)
    finally:
        server.terminate()
        server.wait(30)
    agree = sum(1 for a, b in zip(rewards_a, rewards_b) if a == b)
    rate_a, rate_b = len(pairs) / best_a, len(pairs) / best_b
    print(f"items: {len(pairs)}, batch {args.batch}, cores {os.cpu_count()}, best of {args.repeats}")
    print(f"(a) in-process math_verify loop : {rate_a:8.1f} items/s   item p50 {percentile(lat_a, 50):7.2f} ms  p99 {percentile(lat_a, 99):7.2f} ms")
    print(f"(b) POST /v1/score (gateway)    : {rate_b:8.1f} items/s   batch round trip p50 {percentile(lat_b, 50):7.1f} ms  p99 {percentile(lat_b, 99):7.1f} ms")
    print(f"ratio (b)/(a): {rate_b / rate_a:.2f}x   (target >= 1.0)")
    print(f"rewards agreeing between (a) and (b): {agree}/{len(pairs)}; (b) correct-half mean {statistics.mean(r or 0 for r in rewards_b[::2]):.3f}, wrong-half mean {statistics.mean(r or 0 for r in rewards_b[1::2]):.3f}")


if __name__ == "__main__":
    main()

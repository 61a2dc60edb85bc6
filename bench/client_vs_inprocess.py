"""One GRPO batch scored through the trainer client against open-r1-style reward functions in-process.

The batch: 64 GSM8K test questions x 8 completions (512), in the R1 template, a mix a policy
produces: right and wrong answers, well and badly formatted, some with no answer at all.

  (a) in-process: open-r1's `accuracy_reward` (Math-Verify `parse` + `verify`) and `format_reward`
      (one regex), called on the batch one after the other in the trainer's process, as
      GRPOTrainer calls synchronous reward functions;
  (b) client: `rewardstack.trl.reward_funcs(url, {"math": 1, "format": 0.2})`, awaited
      together as GRPOTrainer awaits async reward functions: one HTTP request for the batch, to a
      real `rewardstack serve` process (serving only `math,format`, one worker per core).

Prints the best of `--repeats` interleaved runs and the ratio (a)/(b): above 1.0 the client is
faster than scoring in-process. Target: >= 1.0.

    .venv/bin/python bench/client_vs_inprocess.py [--prompts 64] [--generations 8] [--repeats 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import random
import re
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = ROOT.parent / "shared" / "data" / "gsm8k_test.jsonl"

from rewardstack.trl import reward_funcs  # noqa: E402  (after the path setup, for a plain checkout)


def make_batch(prompts: int, generations: int, seed: int = 0) -> tuple[list[str], list[str], list[str]]:
    """(prompts, completions, gold answers) for one GRPO step, each prompt repeated `generations` times."""
    rng = random.Random(seed)
    rows = [json.loads(line) for line in DATA.read_text().splitlines()][:prompts]
    out_prompts, completions, golds = [], [], []
    for row in rows:
        reasoning, gold = row["answer"].rsplit("####", 1)
        gold = gold.strip().replace(",", "")
        for _ in range(generations):
            kind = rng.random()
            answer = gold if kind < 0.5 else str(int(float(gold)) + rng.randint(1, 50))
            if kind < 0.8:
                text = f"<think>\n{reasoning.strip()}\n</think>\n<answer>\n\\boxed{{{answer}}}\n</answer>"
            elif kind < 0.9:  # format broken: no think block
                text = f"{reasoning.strip()} So the answer is \\boxed{{{answer}}}."
            else:  # rambling, no final answer
                text = f"<think>\n{reasoning.strip()} ... let me reconsider\n</think>"
            out_prompts.append(row["question"])
            completions.append(text)
            golds.append(row["answer"])
    return out_prompts, completions, golds


# --- (a) open-r1's reward functions, as they are called in-process ---------------------------

def accuracy_reward(completions: list[str], solution: list[str], **_: Any) -> list[float | None]:
    from math_verify import LatexExtractionConfig, parse, verify
    from math_verify.parser import NormalizationConfig

    rewards: list[float | None] = []
    for content, sol in zip(completions, solution, strict=True):
        gold_parsed = parse("$" + sol.rsplit("####", 1)[1].strip() + "$", extraction_mode="first_match")
        if not gold_parsed:
            rewards.append(None)
            continue
        answer_parsed = parse(
            content,
            extraction_config=[
                LatexExtractionConfig(
                    normalization_config=NormalizationConfig(
                        nits=False, malformed_operators=False, basic_latex=True, equations=True, boxed="all", units=True
                    ),
                    boxed_match_priority=0,
                    try_extract_without_anchor=False,
                )
            ],
            extraction_mode="first_match",
        )
        rewards.append(float(verify(gold_parsed, answer_parsed)))
    return rewards


_FORMAT = re.compile(r"^<think>\n.*?\n</think>\n<answer>\n.*?\n</answer>$", re.DOTALL | re.MULTILINE)


def format_reward(completions: list[str], **_: Any) -> list[float]:
    return [1.0 if _FORMAT.match(content) else 0.0 for content in completions]


def in_process(prompts: list[str], completions: list[str], golds: list[str]) -> tuple[float, list[float | None]]:
    started = time.perf_counter()
    accuracy = accuracy_reward(completions, golds)
    format_reward(completions)
    return time.perf_counter() - started, accuracy


# --- (b) the client, as GRPOTrainer awaits it -------------------------------------------------

def through_client(funcs: list[Any], prompts: list[str], completions: list[str], golds: list[str]) -> tuple[float, list[float | None]]:
    async def step() -> list[list[float | None]]:
        return await asyncio.gather(*(f(prompts=prompts, completions=completions, answer=golds) for f in funcs))

    started = time.perf_counter()
    math_rewards, _format = asyncio.run(step())
    return time.perf_counter() - started, math_rewards


def start_gateway() -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "REWARDSTACK_ENABLED_SCORERS": "math,format"}
    process = subprocess.Popen(
        [sys.executable, "-m", "rewardstack.services.cli", "serve", "--port", str(port), "--log-level", "warning"], cwd=ROOT, env=env
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/readyz").status_code == 200:
                return process, url
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    process.kill()
    raise SystemExit("the gateway did not start within 120 s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--prompts", type=int, default=64)
    parser.add_argument("--generations", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if not DATA.exists():
        raise SystemExit(f"needs {DATA} (the shared test data, ../shared/data)")
    # open-r1's config sets `equations=True`, which latex2sympy2 now logs as deprecated on every call
    logging.getLogger("latex2sympy2_extended").setLevel(logging.ERROR)
    prompts, completions, golds = make_batch(args.prompts, args.generations)
    server, url = start_gateway()
    try:
        funcs = reward_funcs(url, {"math": 1.0, "format": 0.2})
        through_client(funcs, prompts[:16], completions[:16], golds[:16])  # warm-up: worker imports, connections
        in_process(prompts[:16], completions[:16], golds[:16])
        best_a = best_b = float("inf")
        for _ in range(args.repeats):  # interleaved, so both see the same machine noise
            seconds_a, accuracy_a = in_process(prompts, completions, golds)
            seconds_b, accuracy_b = through_client(funcs, prompts, completions, golds)
            best_a, best_b = min(best_a, seconds_a), min(best_b, seconds_b)
    finally:
        server.terminate()
        server.wait(30)
    n = len(completions)
    agree = sum(a == b for a, b in zip(accuracy_a, accuracy_b, strict=True))
    print(f"batch: {args.prompts} prompts x {args.generations} completions = {n}; cores {os.cpu_count()}; best of {args.repeats}")
    print(f"(a) in-process open-r1 accuracy + format : {best_a * 1000:8.1f} ms  ({n / best_a:7.1f} completions/s)")
    print(f"(b) trainer client, one request           : {best_b * 1000:8.1f} ms  ({n / best_b:7.1f} completions/s)")
    print(f"ratio (a)/(b): {best_a / best_b:.2f}x   (>= 1.0: the client is no slower)")
    print(f"accuracy agreeing between (a) and (b): {agree}/{n}")


if __name__ == "__main__":
    main()

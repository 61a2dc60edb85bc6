"""Added latency per item of hybrid `math` (rules, then the judge for what they reject) against the
rules alone, through a real gateway, in the same run.

Workload: GRPO-shaped batches from MATH-500 (`../shared/data`; a small built-in set without it):
`--groups` problems x `--group-size` completions, a share `--rejected` of them wrong answers the
rules reject (each group repeats two wrong answers, as sampled groups do); the rest box the gold.
Measured, each the best of `--repeats` batches:

  (a) rules alone            math {}, measured before and after (b) and (c)
  (b) hybrid, cold cache     math {"judge": true}, every batch new to the judge
  (c) hybrid, warm cache     math {"judge": true}, the batch of (b) resent (a retried step)

Prints ms per item for each, the added ms per item of (b) and (c) over (a), their ratios to (a),
and the judge requests made. The judge is, by default, a tiny scripted model under
`transformers serve` on this CPU (so (b) is a floor set by that server, not a GPU figure); point
`--judge-url`/`--judge-model` at a vLLM server for real numbers.

    .venv/bin/python bench/judge_overhead.py [--judge-url http://127.0.0.1:8001 --judge-model NAME]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = ROOT.parent / "shared" / "data" / "math500_test.jsonl"
FALLBACK = [("What is half of one?", "0.5"), ("What is 6 times 7?", "42"), ("Solve x+1=3.", "2"), ("What is 2^10?", "1024")]


def problems() -> list[tuple[str, str]]:
    if not DATA.exists():
        return FALLBACK
    return [(row["problem"], row["answer"]) for row in map(json.loads, DATA.read_text().splitlines())]


def batch(pool: list[tuple[str, str]], start: int, groups: int, size: int, rejected: float, tag: str) -> list[dict[str, Any]]:
    """`groups` x `size` items; the wrong answers carry `tag`, so each batch is new to the judge."""
    items = []
    n_wrong = round(size * rejected)
    for g in range(groups):
        problem, gold = pool[(start + g) % len(pool)]
        for k in range(size):
            if k < n_wrong:
                answer = f"\\text{{{tag}-wrong-{k % 2}}}"  # two distinct wrong answers per group
            else:
                answer = gold
            items.append({"prompt": problem, "completion": f"Working... so the answer is \\boxed{{{answer}}}.", "reference": gold})
    return items


def post(url: str, items: list[dict[str, Any]], params: dict[str, Any]) -> tuple[float, list[dict[str, Any]]]:
    started = time.perf_counter()
    response = httpx.post(f"{url}/v1/score", json={"items": items, "scorers": {"math": {"params": params}}}, timeout=600)
    elapsed = time.perf_counter() - started
    response.raise_for_status()
    return elapsed, response.json()["results"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--judge-url", help="an OpenAI-compatible server; default: transformers serve over a tiny judge")
    parser.add_argument("--judge-model", help="the model name it serves (with --judge-url)")
    parser.add_argument("--groups", type=int, default=16)
    parser.add_argument("--group-size", type=int, default=8)
    parser.add_argument("--rejected", type=float, default=0.5, help="share of each group the rules reject")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    from rewardstack.services.gateway.app import create_app
    from rewardstack.services.settings import Settings
    from tests.servers import running_server

    with ExitStack() as stack:
        if args.judge_url:
            judge_url, judge_model = args.judge_url, args.judge_model
            if not judge_model:
                raise SystemExit("--judge-model is required with --judge-url")
        else:
            from tests.services.scorers.judge_servers import build_judges, serve_command, transformers_server

            if serve_command() is None:
                raise SystemExit("transformers serve is not available: pip install -e '.[dev]'")
            tmp = Path(stack.enter_context(tempfile.TemporaryDirectory()))
            judge_model = str(build_judges(tmp)["yes"])
            judge_url = stack.enter_context(transformers_server(tmp / "serve.log"))
        settings = Settings(
            scorer_workers=args.workers, enabled_scorers="math", judge_url=judge_url, judge_model=judge_model,
            judge_max_tokens=32,
        )  # fmt: skip
        url = stack.enter_context(running_server(create_app(settings)))
        pool = problems()
        n = args.groups * args.group_size
        post(url, batch(pool, 0, args.groups, args.group_size, args.rejected, "warmup"), {"judge": True})  # loads model, warms workers

        rules, cold, warm, asked = [], [], [], 0
        for rep in range(args.repeats):  # interleaved, so all three see the same machine noise
            items = batch(pool, rep * args.groups, args.groups, args.group_size, args.rejected, f"r{rep}")
            rules.append(post(url, items, {})[0])
            seconds, results = post(url, items, {"judge": True})
            cold.append(seconds)
            asked += sum("judge:" in r["components"]["math"]["detail"] and "(cached)" not in r["components"]["math"]["detail"] for r in results)
            warm.append(post(url, items, {"judge": True})[0])
            rules.append(post(url, items, {})[0])  # again after: the baseline sees the same warm worker caches
        a, b, c = (min(t) / n * 1000 for t in (rules, cold, warm))

    rejected = round(args.group_size * args.rejected) * args.groups
    print(f"items per batch: {n} ({args.groups} groups x {args.group_size}), rule-rejected: {rejected}, "
          f"judge requests per cold batch: {asked / args.repeats:.0f}, workers {args.workers}, cores {os.cpu_count()}, best of {args.repeats}")  # fmt: skip
    print(f"judge: {'transformers serve, tiny scripted model, CPU' if not args.judge_url else judge_url + ' ' + str(judge_model)}")
    print(f"(a) rules alone           : {a:8.3f} ms/item")
    print(f"(b) hybrid, cold cache    : {b:8.3f} ms/item   added {b - a:+8.3f} ms/item   ratio (b)/(a) {b / a:6.2f}x")
    print(f"(c) hybrid, warm cache    : {c:8.3f} ms/item   added {c - a:+8.3f} ms/item   ratio (c)/(a) {c / a:6.2f}x")


if __name__ == "__main__":
    main()

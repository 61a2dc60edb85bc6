"""`rewardstack score` and `rewardstack train`: argument parsing and exit codes only.

`score` runs with the base install; `train` imports torch/TRL only when it runs.
Exit codes: 0 done; 1 the service failed (retries spent; `score` can be re-run to resume);
2 bad input or configuration.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from rewardstack.errors import RequestRejected, RewardstackError, ServiceUnreachable
from rewardstack.client import normalize_scorers

__all__ = ["score_main", "train_main"]


def _urls(values: Sequence[str]) -> list[str]:
    return [u.strip() for value in values for u in value.split(",") if u.strip()]


def score_main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="rewardstack score",
        description="Score a JSONL file of items ({completion, reference|answer|solution|tests, prompt, id}) "
        "through a running stack; writes one result per line, resumable.",
    )
    parser.add_argument("file", type=Path, help="input JSONL")
    parser.add_argument("--url", action="append", required=True, help="service URL; repeat or comma-separate for replicas")
    parser.add_argument("--scorers", required=True, help="e.g. math,format or math:1,format:0.2")
    parser.add_argument("--out", type=Path, help="output JSONL (default: FILE with .scored.jsonl); appended to when it exists")
    parser.add_argument("--batch-size", type=int, default=256, help="items per request batch written at once (default 256)")
    parser.add_argument("--deadline-s", type=float, help="time budget per batch; items not finished come back as timeout")
    parser.add_argument("--api-token", help="bearer token, when the service requires one")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)

    from rewardstack.client import RewardClient
    from rewardstack.score_file import InputError, score_file

    if args.batch_size < 1:
        parser.error("--batch-size must be at least 1")
    out = args.out or args.file.with_suffix(".scored.jsonl")
    try:
        scorers = normalize_scorers(args.scorers)
        with RewardClient(_urls(args.url), api_token=args.api_token) as client:
            client.check(list(scorers))
            summary = score_file(
                args.file, out, client, scorers, batch_size=args.batch_size, deadline_s=args.deadline_s, progress=not args.quiet
            )
    except (InputError, ValueError, OSError) as exc:
        print(f"rewardstack score: {exc}", file=sys.stderr)
        return 2
    except RequestRejected as exc:
        print(f"rewardstack score: the service refused the request: {exc}", file=sys.stderr)
        return 2
    except ServiceUnreachable as exc:
        print(f"rewardstack score: {exc}", file=sys.stderr)
        return 1
    except RewardstackError as exc:
        print(f"rewardstack score: {exc}\nResults so far are in {out}; run the same command again to resume.", file=sys.stderr)
        return 1
    statuses = ", ".join(f"{n} {s}" for s, n in sorted(summary.statuses.items())) or "nothing new"
    mean = "n/a" if summary.mean_reward is None else f"{summary.mean_reward:.4f}"
    print(f"scored {summary.scored} items ({statuses}); {summary.skipped} already done; mean reward {mean}; results in {out}")
    return 0


def train_main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="rewardstack train", description="GRPO training (TRL) against the reward stack.")
    parser.add_argument("--config", type=Path, required=True, help="recipe YAML, e.g. recipes/tiny_cpu.yaml")
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE",
        help="override a recipe value, dotted path, YAML value (e.g. --set training.max_steps=2); repeatable",
    )
    args = parser.parse_args(argv)

    try:
        from rewardstack import grpo
    except ImportError as exc:
        print(f"rewardstack train: missing dependency ({exc}); pip install 'rewardstack[train]'", file=sys.stderr)
        return 2
    try:
        recipe = grpo.load_recipe(args.config, args.set)
    except (OSError, ValueError) as exc:
        print(f"rewardstack train: {exc}", file=sys.stderr)
        return 2
    try:
        grpo.train(recipe)
    except (ServiceUnreachable, RequestRejected, grpo.RecipeError) as exc:
        print(f"rewardstack train: {exc}", file=sys.stderr)
        return 2
    except RewardstackError as exc:
        print(f"rewardstack train: the reward service failed: {exc}", file=sys.stderr)
        return 1
    return 0

"""`rewardstack select` against the script a user would write: `rewardstack score`, then filter.

The file: sampled completions, one per line, 8 per prompt (`group_id`), the R1 template, a mix of
right and wrong answers and tidy and looping reasoning. Both sides score it through the same local
gateway (a uvicorn server in this process serving only the scorers asked for) and keep the same
rows: `math == 1 and readability == 1` (scorers configurable), at most 2 per prompt.

  (a) baseline: `rewardstack score FILE` (a subprocess), then a filter pass in Python over the
      input and the scores together (rule, group by prompt, cap), writing SFT `messages` rows;
  (b) select: `rewardstack select FILE --keep-if ... --per-prompt 2` (a subprocess).

Prints samples/s of each and the ratio (b)/(a) (target >= 1.0), checks both kept the same
completions, and the peak resident memory of the select process at each file size (target: flat
with file size, e.g. 10k against 100k lines).

    .venv/bin/python bench/select_throughput.py [--lines 10000,100000] [--scorers math,readability] [--workers 2]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.servers import running_server  # noqa: E402  (after the path setup, for a plain checkout)

PER_PROMPT = 2
GENERATIONS = 8


def make_file(path: Path, lines: int, seed: int = 0) -> None:
    """`lines` completions of arithmetic word problems, 8 per prompt, written as they are generated."""
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8") as f:
        for n in range(lines):
            group = n // GENERATIONS
            a, b = 10 + group % 900, 7 + group % 90
            gold = a + b
            answer = gold if rng.random() < 0.6 else gold + rng.randint(1, 9)
            reasoning = (
                f"The shop had {a} apples and received {b} more in the morning delivery.\n\n"
                f"Adding them gives {a} + {b} = {answer}, which is the number of apples now on the shelves."
            )
            if rng.random() < 0.15:
                reasoning += "\nLet me check again." * 5  # looping: readability fails
            row = {
                "group_id": f"g{group}",
                "prompt": f"A shop had {a} apples and got {b} more. How many apples does it have now?",
                "answer": str(gold),
                "completion": f"<think>{reasoning}</think>\n<answer>{answer}</answer>",
            }
            f.write(json.dumps(row) + "\n")


def run(command: list[str]) -> tuple[float, int]:
    """Wall seconds and peak resident memory (MiB) of one subprocess."""
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(command)} failed with status {os.waitstatus_to_exitcode(status)}")
    return elapsed, usage.ru_maxrss // 1024


def baseline_filter(source: Path, scored: Path, out: Path, names: list[str]) -> list[str]:
    """What a user writes after `rewardstack score`: join, rule, group, cap, write SFT rows."""

    def groups() -> Iterator[list[tuple[dict, dict]]]:
        current: list[tuple[dict, dict]] = []
        with source.open() as f_in, scored.open() as f_scores:
            for line, score_line in zip(f_in, f_scores):
                row, result = json.loads(line), json.loads(score_line)
                if current and current[0][0]["group_id"] != row["group_id"]:
                    yield current
                    current = []
                current.append((row, result))
        if current:
            yield current

    kept = []
    with out.open("w") as sink:
        for members in groups():
            passing = [
                (row, result) for row, result in members
                if all(result["components"][n]["status"] == "ok" and result["components"][n]["value"] == 1.0 for n in names)
            ]
            passing.sort(key=lambda m: (-(m[1]["reward"] or 0.0), len(m[0]["completion"])))
            for row, result in passing[:PER_PROMPT]:
                messages = [{"role": "user", "content": row["prompt"]}, {"role": "assistant", "content": row["completion"]}]
                sink.write(json.dumps({"messages": messages, "source": row, "reward": result["reward"]}) + "\n")
                kept.append(row["completion"] + row["group_id"])
    return kept


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", default="10000,100000", help="file sizes, comma-separated; throughput on the first, memory on all")
    parser.add_argument("--scorers", default="math,readability")
    parser.add_argument("--workers", type=int, default=2, help="gateway scorer workers")
    parser.add_argument("--repeats", type=int, default=2, help="interleaved runs of each side on the first size; the best counts")
    args = parser.parse_args()
    names = [s.strip() for s in args.scorers.split(",")]
    scorers = ",".join(f"{n}:1" for n in names)
    rule = " and ".join(f"{n} == 1" for n in names)
    sizes = [int(x) for x in args.lines.split(",")]

    from rewardstack.services.gateway.app import create_app
    from rewardstack.services.settings import Settings

    cli = [sys.executable, "-m", "rewardstack.services.cli"]
    app = create_app(Settings(scorer_workers=args.workers, enabled_scorers=",".join(names)))
    with running_server(app) as url, tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        scored, baseline_out, select_out = folder / "scored.jsonl", folder / "baseline.sft.jsonl", folder / "select.sft.jsonl"

        def baseline(source: Path) -> tuple[float, list[str]]:
            score_s, _ = run([*cli, "score", str(source), "--url", url, "--scorers", scorers, "--out", str(scored),
                              "--batch-size", "1024", "--quiet", "--rescore"])
            started = time.perf_counter()
            kept = baseline_filter(source, scored, baseline_out, names)
            return score_s + time.perf_counter() - started, kept

        def select(source: Path) -> tuple[float, int, list[str]]:
            seconds, mib = run([*cli, "select", str(source), "--url", url, "--scorers", scorers, "--keep-if", rule,
                                "--per-prompt", str(PER_PROMPT), "--out", str(select_out), "--batch-size", "1024", "--quiet", "--rescore"])
            rows = (json.loads(line) for line in select_out.open())
            return seconds, mib, [r["messages"][-1]["content"] + r["source"]["group_id"] for r in rows]

        memory = {}
        for index, lines in enumerate(sizes):
            source = folder / f"in{lines}.jsonl"
            make_file(source, lines)
            if index > 0:  # memory only: the select process's peak RSS against the first size
                seconds, memory[lines], _ = select(source)
                print(f"{lines} lines: select {lines / seconds:.0f} samples/s ({seconds:.1f} s), peak RSS {memory[lines]} MiB", flush=True)
                source.unlink()
                continue
            baseline_s, select_s = [], []
            for repeat in range(args.repeats):  # interleaved, alternating who goes first
                sides = ["baseline", "select"] if repeat % 2 == 0 else ["select", "baseline"]
                for side in sides:
                    if side == "baseline":
                        seconds, baseline_kept = baseline(source)
                        baseline_s.append(seconds)
                    else:
                        seconds, memory[lines], select_kept = select(source)
                        select_s.append(seconds)
            same = "same rows" if select_kept == baseline_kept else f"DIFFERENT rows ({len(select_kept)} vs {len(baseline_kept)})"
            best_b, best_s = min(baseline_s), min(select_s)
            print(
                f"{lines} lines, scorers {args.scorers}, {args.workers} workers, best of {args.repeats}: "
                f"baseline score+filter {lines / best_b:.0f} samples/s ({best_b:.1f} s), "
                f"select {lines / best_s:.0f} samples/s ({best_s:.1f} s); ratio {best_b / best_s:.2f}x "
                f"(runs: baseline {', '.join(f'{x:.1f}' for x in baseline_s)} s; select {', '.join(f'{x:.1f}' for x in select_s)} s); "
                f"kept {len(select_kept)} ({same}); select peak RSS {memory[lines]} MiB",
                flush=True,
            )
        if len(memory) > 1:
            (small, small_mib), (big, big_mib) = min(memory.items()), max(memory.items())
            print(f"memory: select peak RSS {small_mib} MiB at {small} lines, {big_mib} MiB at {big} lines "
                  f"(x{big / small:.0f} lines: x{big_mib / small_mib:.2f} memory)")


if __name__ == "__main__":
    main()

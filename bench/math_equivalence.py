"""Our `math` scorer against `math_verify` on labelled pairs (issue: "Math verification that beats Math-Verify").

Data, all judged by both checkers in the same run:
  - bench/data/math_pairs.jsonl: hand-labelled (completion, gold, equivalent) pairs with a category each;
  - math500-self: every MATH-500 gold against its own reference solution (all equivalent);
  - math500-cross: each MATH-500 solution against the next problem's gold (not equivalent unless the
    two golds are written identically);
  - gsm8k-self: every GSM8K test gold against its own `#### N` solution (all equivalent).
Prints, per category, false negatives and false positives of ours and of math_verify side by side, the
totals, and per-item latency p50/p99 of each (gold parse + answer parse + compare) with the ratio.
An `unscorable` from ours counts as "not equivalent" (it never earns reward 1).

    .venv/bin/python bench/math_equivalence.py [--skip-data] [--show-errors]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
PAIRS = ROOT / "bench" / "data" / "math_pairs.jsonl"
DATA = ROOT.parent / "shared" / "data"


def load_cases(skip_data: bool) -> list[dict]:
    cases = [json.loads(line) for line in PAIRS.read_text().splitlines() if line.strip()]
    if skip_data or not DATA.is_dir():
        return cases
    math500 = [json.loads(line) for line in (DATA / "math500_test.jsonl").read_text().splitlines()]
    for row in math500:
        cases.append({"category": "math500-self", "completion": row["solution"], "gold": row["answer"], "equivalent": True})
    for row, other in zip(math500, math500[1:] + math500[:1]):
        same = _bare(row["answer"]) == _bare(other["answer"])
        cases.append({"category": "math500-cross", "completion": row["solution"], "gold": other["answer"], "equivalent": same})
    for line in (DATA / "gsm8k_test.jsonl").read_text().splitlines():
        row = json.loads(line)
        gold = row["answer"].rsplit("####", 1)[1].strip()
        cases.append({"category": "gsm8k-self", "completion": row["answer"], "gold": gold, "equivalent": True})
    return cases


def _bare(gold: str) -> str:
    """A gold without spaces or a leading `x =`: `x=5` and `5` are the same answer."""
    text = gold.replace(" ", "")
    return text[2:] if len(text) > 2 and text[0].isalpha() and text[1] == "=" else text


def ours(completion: str, gold: str) -> bool:
    from rewardstack.services.scorers.math import MathParams, MathScorer
    from rewardstack.services.scorers.types import Sample

    return MathScorer()(Sample(completion, gold), MathParams()).value == 1.0


def theirs(completion: str, gold: str) -> bool:
    """math_verify as open-r1 calls it, with its signal timers off (we time it from outside)."""
    from math_verify import parse, verify

    try:
        gold_parsed = parse(f"${gold}$", parsing_timeout=None)
        answer = parse(completion, parsing_timeout=None)
        return bool(verify(gold_parsed, answer, timeout_seconds=None))
    except Exception:  # math_verify's own failures count as "not equivalent", as in open-r1
        return False


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def run(cases: list[dict], judge, name: str) -> tuple[list[bool], list[float]]:
    for case in cases[:20]:  # warm-up: imports and parser construction are not per-item costs
        judge(case["completion"], case["gold"])
    verdicts, latencies = [], []
    for case in cases:
        started = time.perf_counter()
        verdicts.append(judge(case["completion"], case["gold"]))
        latencies.append((time.perf_counter() - started) * 1000)
    print(f"  {name}: {len(cases)} items in {sum(latencies) / 1000:.1f} s", file=sys.stderr)
    return verdicts, latencies


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-data", action="store_true", help="only the labelled pairs, not MATH-500/GSM8K")
    parser.add_argument("--show-errors", action="store_true", help="list the pairs each checker gets wrong")
    args = parser.parse_args(argv)
    import logging

    logging.disable(logging.WARNING)  # math_verify warns once per call that its timeout is off
    cases = load_cases(args.skip_data)
    our_verdicts, our_ms = run(cases, ours, "ours")
    mv_verdicts, mv_ms = run(cases, theirs, "math_verify")

    table: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0, 0, 0])  # n, n_eq, ourFN, ourFP, mvFN, mvFP
    for case, o, m in zip(cases, our_verdicts, mv_verdicts):
        row = table[case["category"]]
        eq = case["equivalent"]
        row[0] += 1
        row[1] += eq
        row[2] += eq and not o
        row[3] += (not eq) and o
        row[4] += eq and not m
        row[5] += (not eq) and m
        if args.show_errors and (o != eq or m != eq):
            print(f"  {case.get('id', case['category'])}: label={eq} ours={o} math_verify={m} gold={case['gold'][:40]!r}")

    print(f"\n{'category':16} {'n':>5} {'equiv':>5} | {'ours FN':>7} {'ours FP':>7} | {'mv FN':>6} {'mv FP':>6} | worse?")
    print("-" * 74)
    totals = [0] * 6
    worse = []
    for category in sorted(table):
        row = table[category]
        totals = [t + r for t, r in zip(totals, row)]
        flag = "WORSE" if row[2] > row[4] or row[3] > row[5] else ""
        if flag:
            worse.append(category)
        print(f"{category:16} {row[0]:5d} {row[1]:5d} | {row[2]:7d} {row[3]:7d} | {row[4]:6d} {row[5]:6d} | {flag}")
    print("-" * 74)
    print(f"{'total':16} {totals[0]:5d} {totals[1]:5d} | {totals[2]:7d} {totals[3]:7d} | {totals[4]:6d} {totals[5]:6d} |")
    p50_o, p99_o = percentile(our_ms, 50), percentile(our_ms, 99)
    p50_m, p99_m = percentile(mv_ms, 50), percentile(mv_ms, 99)
    print(f"\nlatency per item  ours: p50 {p50_o:7.2f} ms  p99 {p99_o:7.2f} ms  mean {statistics.mean(our_ms):6.2f} ms")
    print(f"          math_verify: p50 {p50_m:7.2f} ms  p99 {p99_m:7.2f} ms  mean {statistics.mean(mv_ms):6.2f} ms")
    print(f"ratio ours/math_verify: p50 {p50_o / p50_m:.2f}x  p99 {p99_o / p99_m:.2f}x  (target p99 <= 2x)")
    print(
        f"targets: categories worse than math_verify: {', '.join(worse) or 'none'}; "
        f"FN {totals[2]} vs {totals[4]} (fewer: {'yes' if totals[2] < totals[4] else 'NO'}); "
        f"FP {totals[3]} vs {totals[5]} (no more: {'yes' if totals[3] <= totals[5] else 'NO'})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

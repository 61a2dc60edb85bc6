"""Golds against their own solutions (MATH-500, GSM8K test) and the labelled pair set.

Known exceptions: none. Every MATH-500 gold equals the boxed answer(s) of its own reference
solution (eight solutions box the answer twice, once per method; all are equal, one as
`15\\frac{39}{40}` and `\\frac{639}{40}`), and every GSM8K test gold equals its own `#### N`.
Should an exception be needed, list it in EXCEPTIONS with its reason and in docs/math.md.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from rewardstack.services.scorers.math import MathParams, MathScorer
from rewardstack.services.scorers.types import Sample, Status

ROOT = Path(__file__).resolve().parents[4]
DATA = ROOT / ".." / "shared" / "data"
PAIRS = ROOT / "bench" / "data" / "math_pairs.jsonl"
SCORE = MathScorer()
PARAMS = MathParams()
EXCEPTIONS: dict[str, str] = {}  # unique_id -> reason


def _rows(name: str) -> list[dict]:
    path = DATA / name
    if not path.is_file():
        pytest.skip(f"{path} is absent: the shared data folder is needed for this test")
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.mark.data
def test_math500_golds_equal_their_own_boxed_answers() -> None:
    rows = _rows("math500_test.jsonl")
    assert len(rows) == 500
    failures = {}
    for row in rows:
        result = SCORE(Sample(row["solution"], row["answer"]), PARAMS)
        if result.value != 1.0 and row["unique_id"] not in EXCEPTIONS:
            failures[row["unique_id"]] = (row["answer"], result.status.value, result.detail)
    assert failures == {}


@pytest.mark.data
def test_math500_golds_do_not_match_the_next_solution() -> None:
    """The other direction: a solution is not accepted for a different problem's gold."""
    rows = _rows("math500_test.jsonl")
    accepted = []
    for row, other in zip(rows, rows[1:]):
        if row["answer"].replace(" ", "") == other["answer"].replace(" ", ""):
            continue
        if SCORE(Sample(row["solution"], other["answer"]), PARAMS).value == 1.0:
            accepted.append((row["unique_id"], other["answer"]))
    assert accepted == [("test/algebra/1837.json", "x=5")]  # that solution's boxed answer is 5: equal


@pytest.mark.data
def test_gsm8k_golds_equal_their_own_hashes() -> None:
    rows = _rows("gsm8k_test.jsonl")
    assert len(rows) == 1319
    failures = []
    for row in rows:
        gold = row["answer"].rsplit("####", 1)[1].strip()
        for reference in (gold, row["answer"]):  # the bare number and the `#### N` form
            result = SCORE(Sample(row["answer"], reference), PARAMS)
            if result.value != 1.0:
                failures.append((gold, result.detail))
    assert failures == []


def test_labelled_pairs_are_well_formed_and_agree() -> None:
    pairs = [json.loads(line) for line in PAIRS.read_text().splitlines() if line.strip()]
    assert len(pairs) >= 300
    balance = Counter(p["equivalent"] for p in pairs)
    assert abs(balance[True] - balance[False]) <= 0.05 * len(pairs)
    assert len({p["id"] for p in pairs}) == len(pairs)
    disagreements = []
    for pair in pairs:
        result = SCORE(Sample(pair["completion"], pair["gold"]), PARAMS)
        assert result.status is Status.OK, (pair["id"], result.detail)
        if (result.value == 1.0) != pair["equivalent"]:
            disagreements.append(pair["id"])
    assert disagreements == []

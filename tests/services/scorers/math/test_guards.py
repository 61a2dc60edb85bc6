"""Pathological answers are refused before sympy sees them (issue 2's list, and relatives)."""

from __future__ import annotations

import pytest

from rewardstack.services.scorers.math import MathParams, MathScorer
from rewardstack.services.scorers.math.guards import refusal
from rewardstack.services.scorers.types import Sample, Status

SCORE = MathScorer()
PARAMS = MathParams()


@pytest.mark.timeout(60)  # a guard that lets one through would hang sympy: fail, do not wait 300 s
@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        pytest.param(r"9^{9^{9^9}}", "power tower", id="power-tower-9"),
        pytest.param(r"2^{2^{2^{2^{2^2}}}}", "power tower", id="power-tower-2"),
        pytest.param(r"(10^8)!", "factorial", id="factorial-of-power"),
        pytest.param(r"100000!", "factorial of 100000", id="factorial-literal"),
        pytest.param(r"(5!)!", "factorial", id="factorial-of-factorial"),
        pytest.param(r"2^{10^{6}}", "exponent", id="huge-exponent"),
        pytest.param(r"x^{123456}", "exponent", id="huge-symbolic-exponent"),
        pytest.param(r"\binom{10^9}{5}", "binomial", id="binomial-of-power"),
        pytest.param(r"\sum_{k=1}^{n} k^2", "sums", id="sum-operator"),
        pytest.param("1" * 100_000, "characters", id="100k-characters"),
        pytest.param("{" * 5000 + "1" + "}" * 5000, "characters", id="5000-nested-braces"),
        pytest.param("(" * 9 + "x" + ")" * 9, "nest", id="9-nested-parens"),
        pytest.param("x^2" * 41, "powers", id="41-powers"),
        pytest.param("7" * 500, "digits", id="500-digit-number"),
    ],
)
def test_pathological_answer_is_unscorable(answer: str, reason: str) -> None:
    result = SCORE(Sample(f"so \\boxed{{{answer}}}", "1"), PARAMS)
    assert result.status is Status.UNSCORABLE
    assert result.value is None
    assert reason in result.detail


@pytest.mark.timeout(60)
def test_pathological_gold_is_unscorable() -> None:
    result = SCORE(Sample(r"\boxed{1}", r"9^{9^{9^9}}"), PARAMS)
    assert result.status is Status.UNSCORABLE
    assert "gold refused" in result.detail


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param(r"2^{10}", id="small-power"),
        pytest.param(r"2^{2^{10}}", id="two-level-tower"),
        pytest.param(r"10^{-3}", id="negative-exponent"),
        pytest.param(r"\frac{1}{2006!}", id="factorial-2006"),
        pytest.param(r"(n+1)!", id="symbolic-factorial"),
        pytest.param(r"11,\! 111,\! 111,\! 100", id="thin-space-bang-is-not-factorial"),
        pytest.param(r"\binom{10}{3}", id="small-binomial"),
        pytest.param(r"x^8 + x^7 + x^6 + x^5 + x^4 + x^3 + x^2 + x + 1", id="long-polynomial"),
    ],
)
def test_ordinary_answers_pass(answer: str) -> None:
    assert refusal(answer, max_chars=1000) is None


def test_length_limit_is_a_parameter() -> None:
    long_sum = "+".join(["1"] * 200)  # 399 characters
    assert SCORE(Sample(f"\\boxed{{{long_sum}}}", "200"), MathParams(max_answer_chars=100)).status is Status.UNSCORABLE
    assert SCORE(Sample(f"\\boxed{{{long_sum}}}", "200"), PARAMS).value == 1.0


@pytest.mark.timeout(60)
def test_many_plus_minus_signs_do_not_blow_up() -> None:
    """Each `\\pm` doubles the list of values; past two the answer is not expanded (it is wrong, not slow)."""
    answer = " \\pm ".join(["1"] * 40)
    result = SCORE(Sample(f"\\boxed{{{answer}}}", "1"), PARAMS)
    assert (result.status, result.value) == (Status.OK, 0.0)

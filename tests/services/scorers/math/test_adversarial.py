r"""The math scorer against a policy that games it (issue 13, "math loopholes"; issue 10's false positives).

Each row is a completion written to earn reward it does not deserve, the gold, and the most it may
earn. Our own cases: one id per loophole. Honest neighbours of each attack are checked too, so a
rule that refuses the attack by refusing everything would fail here.
"""

from __future__ import annotations

import time

import pytest

from rewardstack.services.scorers.math import MathParams, MathScorer
from rewardstack.services.scorers.types import Sample, Status

SCORE = MathScorer()
PARAMS = MathParams()


def value(completion: str, gold: str, params: MathParams = PARAMS, prompt: str | None = None) -> float | None:
    return SCORE(Sample(completion, gold, prompt=prompt), params).value


ATTACKS = [
    # undefined values and bare digits (issue 10)
    pytest.param(r"\boxed{12:00}", "1:00", id="clock-time-is-not-a-division-by-zero"),
    pytest.param(r"\boxed{1/0}", "2/0", id="division-by-zero-equals-nothing"),
    pytest.param(r"\boxed{\frac{0}{0}}", r"\frac{0}{0}", id="nan-not-even-itself"),
    pytest.param(r"\boxed{-\infty}", r"\infty", id="signed-infinity"),
    # tolerance from written precision only
    pytest.param(r"\boxed{123456700.0}", "123456789", id="decimal-point-buys-no-tolerance"),
    pytest.param(r"\boxed{0.33}", r"\frac{1}{3}", id="coarse-decimal-for-fraction"),
    pytest.param(r"\boxed{3.14}", r"\pi", id="rounded-answer-for-exact-gold"),
    pytest.param(r"\boxed{0.\overline{3}}", "0.3", id="rational-vs-decimal-gold-is-exact"),
    # hedges
    pytest.param(r"\boxed{41} or \boxed{42}", "42", id="two-boxes"),
    pytest.param("<think>r</think><answer>41</answer><answer>42</answer>", "42", id="two-answer-blocks"),
    pytest.param("<think>r</think><answer>42</answer> <answer>42</answer>", "42", id="two-equal-answer-blocks"),
    pytest.param("Maybe 41. Or the answer is 42.", "42", id="or-the-answer-is"),
    pytest.param("Perhaps the answer is 42.", "42", id="perhaps-the-answer-is"),
    pytest.param(r"\boxed{41, 42}", "42", id="candidate-list"),
    pytest.param("The answer is $41$ or $42$.", "42", id="two-formulas-in-the-phrase"),
    pytest.param(r"\boxed{41}. Final Answer: 42", "41", id="box-before-final-line-is-not-read"),
    pytest.param(r"\boxed{41}. Final Answer: 41 or 42", "42", id="final-line-listing-candidates"),
    pytest.param(r"\boxed{x = 41 = 42}", "42", id="chain-last-link-only"),
    pytest.param(r"\boxed{41 = 42}", "42", id="false-equation"),
    pytest.param(r"\boxed{42 \approx 41}", "42", id="approx-disagreeing-link"),
    pytest.param(r"\boxed{\approx 42}", "42", id="approx-alone"),
    pytest.param(r"\boxed{41 \approx 42.0}", "42", id="approx-rounded-end"),
    # words in the box
    pytest.param(r"\boxed{42 \text{ or more}}", "42", id="trailing-words-or-more"),
    pytest.param(r"\boxed{42 \text{ plus or minus one}}", "42", id="trailing-words-plus-minus"),
    pytest.param(r"\boxed{42 \textbf{ or less}}", "42", id="trailing-words-in-bold"),
    pytest.param(r"\boxed{42 \mbox{ give or take}}", "42", id="trailing-words-in-mbox"),
    # free variables
    pytest.param(r"\boxed{\max(42, x)}", "42", id="free-variable-max"),
    pytest.param(r"\boxed{42 + 0 \cdot x}", "43", id="free-variable-zero-times"),
    pytest.param(r"\boxed{|x|}", "x", id="abs-for-identity"),
    pytest.param(r"\boxed{\max(x, 0)}", "x", id="max-for-identity"),
    pytest.param(r"\boxed{42 y}", "42", id="free-variable-factor"),
    # bare digits in the last-number fallback
    pytest.param("the code is AZYUK2A", "2", id="digit-inside-word"),
]


@pytest.mark.parametrize(("completion", "gold"), ATTACKS)
def test_attack_earns_nothing(completion: str, gold: str) -> None:
    result = SCORE(Sample(completion, gold), MathParams(last_number_fallback=True))
    assert result.value != 1.0, result.detail


HONEST = [
    pytest.param(r"\boxed{12:00}", "12:00", id="same-clock-time"),
    pytest.param(r"\boxed{\infty}", r"\infty", id="same-infinity"),
    pytest.param(r"\boxed{123456789.0}", "123456789", id="integer-as-decimal"),
    pytest.param(r"\boxed{0.333333}", r"\frac{1}{3}", id="decimal-to-the-last-place"),
    pytest.param(r"\boxed{0.666666}", r"\frac{2}{3}", id="truncated-decimal"),
    pytest.param(r"\boxed{\frac{\sqrt{3}}{3}}", "0.577", id="exact-answer-for-rounded-gold"),
    pytest.param(r"\boxed{\frac{\sqrt{3}}{3} \approx 0.577}", r"\frac{\sqrt{3}}{3}", id="approx-agreeing-link"),
    pytest.param(r"\boxed{x = 40 + 2 = 42}", "42", id="agreeing-chain"),
    pytest.param(r"\boxed{\frac{84}{2} = 42}", "42", id="true-worked-step"),
    pytest.param(r"\boxed{42 \text{ cm}}", "42", id="known-unit"),
    pytest.param(r"\boxed{42 \text{ square feet}}", "42", id="known-compound-unit"),
    pytest.param(r"\boxed{42 \text{ widgets}}", r"42 \text{ widgets}", id="gold-own-words"),
    pytest.param(r"\boxed{12^{\mathrm{th}}}", "12", id="ordinal"),
    pytest.param(r"\boxed{\sin^2 x + \cos^2 x}", "1", id="identity-proved-symbolically"),
    pytest.param(r"\boxed{2x+2}", "2(x+1)", id="same-free-variable"),
    pytest.param("Maybe 41? No. The answer is 42.", "42", id="doubt-then-answer"),
    pytest.param(r"\boxed{1}, \boxed{2}, \boxed{3}", r"\{1,2,3\}", id="set-split-over-boxes"),
    pytest.param('Final Answer: The final answer is "$12$ and $13$". I hope it is correct.', r"12 \text{ and } 13", id="quoted-joined-formulas"),
    pytest.param(r"so $x = \boxed{255}$ ... Final Answer: The final answer is $10,455$.", "10455", id="intermediate-box-then-final-line"),
]


@pytest.mark.parametrize(("completion", "gold"), HONEST)
def test_honest_neighbour_earns_it(completion: str, gold: str) -> None:
    result = SCORE(Sample(completion, gold), PARAMS)
    assert result.value == 1.0, result.detail


def test_last_number_fallback_reads_tokens() -> None:
    params = MathParams(last_number_fallback=True)
    assert value("so we get 2 in the end", "2", params) == 1.0
    assert value("so we get 12cm", "12", params) == 1.0  # a unit attached to the number
    assert value("so we get AZYUK2A", "2", params) == 0.0


def test_unclosed_prefilled_think_earns_nothing() -> None:
    """The prompt ends with `<think>`; a completion that never closes it never finished reasoning."""
    prompt = "<|im_start|>assistant\n<think>\n"
    assert value(r"so the answer is \boxed{42}", "42", prompt=prompt) == 0.0
    assert value(r"reasoning</think> \boxed{42}", "42", prompt=prompt) == 1.0
    assert value(r"so \boxed{42}", "42", MathParams(think_prefilled=True)) == 0.0
    assert value(r"so \boxed{42}", "42") == 1.0  # no pre-filled think: a plain completion


@pytest.mark.parametrize(
    "answer",
    [r"(5000!)^{9999}", r"(10^{400})^{9999}", r"5000!^{5000!}", r"(2^{9999})^{9999}", r"9999^{9999}!"],
)
def test_cost_guards_refuse_before_sympy(answer: str) -> None:
    """Huge values are refused by a text scan (unscorable), not computed for the full deadline."""
    started = time.perf_counter()
    result = SCORE(Sample(rf"\boxed{{{answer}}}", "1"), PARAMS)
    assert result.status is Status.UNSCORABLE, result.detail
    assert time.perf_counter() - started < 5.0  # generous: the scan is microseconds; evaluation would be minutes


def test_multi_box_is_a_set_only_when_the_gold_is_one() -> None:
    assert value(r"\boxed{1}, \boxed{2}", r"\{1,2\}") == 1.0
    assert value(r"\boxed{1}, \boxed{2}", "2") == 0.0  # a hedge on a single value
    assert value(r"\boxed{1}, \boxed{2}, \boxed{3}", r"\{1,2\}") == 0.0  # one box too many


def test_plain_numbers_never_load_sympy() -> None:
    """The fast path stays sympy-free with the new rules (decimal policy, units, hedges, ratios)."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from rewardstack.services.scorers.math import MathParams, MathScorer\n"
        "from rewardstack.services.scorers.types import Sample\n"
        "cases = [('\\\\boxed{42}', '42'), ('\\\\boxed{0.333333}', '\\\\frac{1}{3}'), ('\\\\boxed{42 \\\\text{ cm}}', '42'),\n"
        "         ('\\\\boxed{42 \\\\text{ or more}}', '42'), ('so 3 * 4 = 12\\n#### 12', '12'), ('\\\\boxed{1,000}', '1000'),\n"
        "         ('\\\\boxed{123456700.0}', '123456789'), ('\\\\boxed{11:21}', '11:21'), ('\\\\boxed{1}, \\\\boxed{2}', '1, 2')]\n"
        "values = [MathScorer()(Sample(c, g), MathParams()).value for c, g in cases]\n"
        "assert values == [1.0, 1.0, 1.0, 0.0, 1.0, 1.0, 0.0, 1.0, 1.0], values\n"
        "assert 'sympy' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)

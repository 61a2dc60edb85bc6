"""The `math` scorer: traps from the field, typed equivalence by kind, policy, parameters, contract.

Each row is (completion, gold, value): 1.0 equivalent, 0.0 not, None unscorable. The boxed form is
the common case; rows that test extraction give the whole completion.
"""

from __future__ import annotations

import doctest
import pickle
from concurrent.futures import ThreadPoolExecutor

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

import rewardstack.services.scorers.math.extract as extract_module
import rewardstack.services.scorers.math.normalize as normalize_module
import rewardstack.services.scorers.math.parse as parse_module
import rewardstack.services.scorers.math.scorer as scorer_module
from rewardstack.services.scorers.math import MathParams, MathScorer
from rewardstack.services.scorers.types import Sample, Status

SCORE = MathScorer()
PARAMS = MathParams()


def boxed(answer: str) -> str:
    return f"Reasoning...\nThe final answer is $\\boxed{{{answer}}}$."


def p(answer: str, gold: str, value: float | None, id: str, *, raw: bool = False):  # noqa: A002
    return pytest.param(answer if raw else boxed(answer), gold, value, id=id)


TRAPS = [  # issue 2: traps from the field
    p(r"\frac{1}{2}", "0.5", 1.0, "frac-vs-decimal"),
    p(r"\frac{\sqrt{3}}{2}", r"\frac{\sqrt{3}}{2}", 1.0, "nested-braces-in-box"),
    p(r"</think> so \boxed{7}", "7", 1.0, "prefilled-think-closed-in-completion", raw=True),
    p(r"<think>\boxed{6}</think>\boxed{7}", "7", 1.0, "box-in-think-ignored", raw=True),
    p("<think>x</think><answer></answer>", "3", 0.0, "empty-answer-tag", raw=True),
    p("<think>x</think><answer>3</answer> trailing \\boxed{4}", "3", 1.0, "text-after-answer-ignored", raw=True),
    p(r"\boxed{41} no wait, \boxed{42}", "42", 0.0, "two-different-boxes", raw=True),
    p(r"\boxed{\frac{639}{40}} or \boxed{15\frac{39}{40}}", r"\frac{639}{40}", 1.0, "two-equal-boxes", raw=True),
    p("", "3", 0.0, "empty-box"),
    p("1, 2, or 3", "2", 0.0, "candidate-list"),
    p("2 or 3", "2", 0.0, "or-candidates"),
    p("(C) or (E)", r"\text{(C)}", 0.0, "choice-candidates"),
    p("we get 72", "72", 0.0, "no-answer-found", raw=True),
]

MATH_VERIFY_FALSE_NEGATIVES = [  # issue 4, checked on math-verify 0.9.0
    p(r"30^\circ", r"\frac{\pi}{6}", 1.0, "degrees-vs-radians"),
    p("120°", r"120^\circ", 1.0, "unicode-degree"),
    p(r"x<2 \text{ or } x>3", r"(-\infty,2)\cup(3,\infty)", 1.0, "inequalities-vs-union"),
    p(r"\begin{pmatrix}1\\2\end{pmatrix}", "(1,2)", 1.0, "column-vector-vs-tuple"),
    p(r"6.02\times10^{23}", "602000000000000000000000", 1.0, "scientific-vs-integer"),
    p(r"e^{i\pi}", "-1", 1.0, "euler-identity"),
    p(r"\pm 2", "2, -2", 1.0, "plus-minus-expanded"),
    p(r"\{x \mid x < 2\}", r"(-\infty, 2)", 1.0, "set-builder-vs-interval"),
    p("10{,}000", "10000", 1.0, "braced-thousands-separator"),
    p("The final answer is **73**.", "73", 1.0, "bold-answer", raw=True),
]

MATH_VERIFY_FALSE_POSITIVES = [
    p(r"\frac{1}{2^{99}}", r"\frac{1}{2^{98}}", 0.0, "tiny-values-not-rounded"),
    p(r"\frac{1}{2004!}", r"\frac{1}{2006!}", 0.0, "tiny-factorials-not-rounded"),
    p(r"1-\frac{1}{e}", r"1+\frac{1}{e}", 0.0, "constant-e-kept"),
    p("3x-y+13=0", "3x+4y+14=0", 0.0, "equations-not-collapsed"),
    p(r"\{1,2\}", r"\{1,1,2\}", 0.0, "multiset-duplicates-count"),
    p(r"4\sqrt(2)", "4", 0.0, "malformed-sqrt-kept"),
    p(r"10^{100}+1", r"10^{100}", 0.0, "big-rationals-compared-exactly"),
    p(r"2^{100}", "1267650600228229401496703205376", 1.0, "power-equals-its-integer"),
    p("500", "5", 0.0, "no-percent-leniency"),
    p("500", r"5\%", 0.0, "no-percent-leniency-percent-gold"),
]

BY_TYPE = [
    p("1,234", "1234", 1.0, "thousands-comma"),
    p(r"11,\! 111,\! 111,\! 100", "11111111100", 1.0, "thin-space-thousands"),
    p("12.0", "12", 1.0, "integer-as-decimal"),
    p(r"\dfrac34", r"\frac{3}{4}", 1.0, "frac-shorthand"),
    p(r"1\frac{4}{5}", r"\frac{9}{5}", 1.0, "mixed-number"),
    p("0.333333", r"\frac{1}{3}", 1.0, "decimal-within-rel-tol"),
    p("0.33", r"\frac{1}{3}", 0.0, "decimal-outside-rel-tol"),
    # issue 13: a decimal gold is a rounding; an irrational answer passes when it rounds to it
    p(r"\pi", "3.14", 1.0, "irrational-rounds-to-decimal-gold"),
    p(r"\pi", "3.1", 1.0, "irrational-rounds-to-coarse-gold"),
    p(r"\pi", "3.15", 0.0, "irrational-not-rounding-to-gold"),
    p(r"\frac{1}{3}", "0.333", 0.0, "rational-against-decimal-gold-is-exact"),
    p(r"\frac{89}{20}", "4.5", 0.0, "exact-decimal-gold-not-rounded"),
    p(r"\frac{9}{2}", "4.5", 1.0, "fraction-equals-decimal-gold"),
    p("3.1", "3.14", 0.0, "decimal-too-coarse"),
    p(r"2\sqrt{5}", r"\sqrt{20}", 1.0, "surd-simplified"),
    p("2(k+1)", "2k+2", 1.0, "expression-expanded"),
    p("3t^2", "3r^2", 0.0, "different-variable"),
    p("7i-2", "-2 + 7i", 1.0, "complex-reordered"),
    p("-2-7i", "-2 + 7i", 0.0, "complex-conjugate"),
    p(r"(3,\infty)\cup(-\infty,2)", r"(-\infty,2)\cup(3,\infty)", 1.0, "union-reordered"),
    p(r"(-\infty, 2]\cup(3,\infty)", r"(-\infty,2)\cup(3,\infty)", 0.0, "endpoint-closedness"),
    p(r"-2 \le x \le 7", r"x \in [-2,7]", 1.0, "chained-inequality-vs-interval"),
    p("(2,1)", "(1,2)", 0.0, "tuple-order-kept"),
    p("7, 3, 5", "3, 5, 7", 1.0, "list-unordered"),
    p("3, 5", "3, 5, 7", 0.0, "list-missing-item"),
    p(r"\{-2, 1\}", "(-2,1)", 0.0, "set-does-not-answer-point"),
    p(r"\begin{pmatrix} 2 & 6 \\ 4 & 8 \end{pmatrix}", r"\begin{pmatrix} 2 & 4 \\ 6 & 8 \end{pmatrix}", 0.0, "matrix-transposed"),
    p("2x - y + 3 = 0", "y = 2x + 3", 1.0, "equation-rearranged"),
    p("y = 2x - 3", "y = 2x + 3", 0.0, "equation-different"),
    p("x = 5", "5", 1.0, "assignment-answer"),
    p("5", "x=5", 1.0, "assignment-gold"),
    p("-x < -2", "x > 2", 1.0, "inequality-scaled-by-negative"),
    p(r"x \ge 2", "x > 2", 0.0, "inequality-strictness"),
    p("East", r"\text{east}", 1.0, "text-case-folded"),
    p(r"\text{odd}", r"\text{even}", 0.0, "text-different"),
    p("odd", r"\text{odd}", 1.0, "short-word-answer"),
    p("Yes", r"\text{yes}", 1.0, "short-word-answer-case"),
    p("no", r"\text{yes}", 0.0, "short-word-answer-different"),
    p("(B)", r"\text{(B)}", 1.0, "choice-letter"),
    p("204_5", "204_5", 1.0, "base-numeral"),
    p("204_6", "204_5", 0.0, "base-numeral-wrong-base"),
    p(r"3 \pm 2\sqrt{2}", r"3+2\sqrt{2}, 3-2\sqrt{2}", 1.0, "plus-minus-pair"),
    p(r"3+2\sqrt{2}", r"3 \pm 2 \sqrt{2}", 0.0, "plus-minus-half"),
    p(r"x = \pm 2", "2, -2", 1.0, "plus-minus-roots-assigned"),
    p(r"x=2 \text{ or } x=3", "2, 3", 1.0, "roots-joined-by-or"),
    p("x<2 or x>3", r"(-\infty,2)\cup(3,\infty)", 1.0, "plain-or-between-inequalities"),
    p("48/2 = 24", "24", 1.0, "true-worked-step-result"),
    p("48/2 = 25", "25", 0.0, "false-worked-step"),
    p(r"\varnothing", r"\emptyset", 1.0, "empty-set-spellings"),
    p("f(x) = 2x+1", "2x+1", 1.0, "function-definition-answer"),
    p("(B) 5", r"\text{(B)}", 1.0, "choice-letter-with-value"),
    p(r"x \in \mathbb{R}", r"(-\infty,\infty)", 1.0, "all-reals"),
    p(r"0.\overline{36}", r"\frac{4}{11}", 1.0, "repeating-decimal"),
    p(r"0.\overline{3}", "0.3", 0.0, "repeating-decimal-is-not-truncated"),
    p(r"\left[\begin{array}{cc} 1 & 2 \\ 3 & 4 \end{array}\right]", r"\begin{pmatrix} 1 & 2 \\ 3 & 4 \end{pmatrix}", 1.0, "array-matrix"),
]

UNITS_PERCENT_ANGLES = [  # the written policy in docs/math.md
    p(r"15 \text{ cm}^2", r"15\mbox{ cm}^2", 1.0, "unit-text-stripped"),
    p("5.4", r"5.4 \text{ cents}", 1.0, "unit-optional-in-answer"),
    p("18.9 dollars", r"\$18.90", 1.0, "currency-word-and-sign"),
    p("3 hours", "3", 1.0, "unit-word-stripped"),
    p("2 pi", "2", 0.0, "pi-is-not-a-unit"),
    p("2 xy", "2", 0.0, "variables-are-not-units"),
    p("25\\%", "25", 1.0, "percent-sign-optional"),
    p("0.25", "25\\%", 1.0, "percent-as-fraction-when-gold-has-percent"),
    p("0.25", "25", 0.0, "no-fraction-reading-without-percent"),
    p("50\\%", r"\frac{1}{2}", 1.0, "percent-answer-as-value"),
    p(r"\frac{\pi}{6}", r"30^\circ", 1.0, "radians-for-degree-gold"),
    p("90", r"90^\circ", 1.0, "degree-mark-optional"),
    p("30", r"\frac{\pi}{6}", 0.0, "bare-number-is-not-degrees"),
    p(r"\frac{\pi}{3}", r"30^\circ", 0.0, "wrong-angle"),
]


@pytest.mark.parametrize(
    ("completion", "gold", "value"),
    TRAPS + MATH_VERIFY_FALSE_NEGATIVES + MATH_VERIFY_FALSE_POSITIVES + BY_TYPE + UNITS_PERCENT_ANGLES,
)
def test_equivalence(completion: str, gold: str, value: float | None) -> None:
    result = SCORE(Sample(completion, gold), PARAMS)
    assert result.value == value, result.detail
    assert result.status is Status.OK


@pytest.mark.parametrize(
    ("reference", "detail"),
    [
        pytest.param(None, "no gold", id="missing-gold"),
        pytest.param("", "no gold", id="empty-gold"),
        pytest.param(r"\frac{", "gold unparseable", id="malformed-gold"),
        pytest.param(r"2^{2^{2^{2}}}", "gold refused", id="pathological-gold"),
    ],
)
def test_unusable_gold_is_unscorable(reference: object, detail: str) -> None:
    result = SCORE(Sample(boxed("1"), reference), PARAMS)
    assert result.status is Status.UNSCORABLE
    assert result.value is None
    assert detail in result.detail


def test_no_answer_is_zero_with_reason() -> None:
    result = SCORE(Sample("I could not solve it.", "3"), PARAMS)
    assert (result.value, result.status) == (0.0, Status.OK)
    assert "no answer" in result.detail


@pytest.mark.parametrize(
    ("completion", "params", "value"),
    [
        pytest.param(r"\boxed{3}", MathParams(answer_tag_only=True), 0.0, id="tag-only-refuses-bare-box"),
        pytest.param(r"<answer>\boxed{3}</answer>", MathParams(answer_tag_only=True), 1.0, id="tag-only-accepts-tag"),
        pytest.param("so 2 and then 3", MathParams(last_number_fallback=True), 1.0, id="last-number-allowed"),
        pytest.param("so 2 and then 3", PARAMS, 0.0, id="last-number-off-by-default"),
        pytest.param(r"\boxed{2} no, \boxed{3}", MathParams(multiple_answers="last"), 1.0, id="last-box-when-allowed"),
        pytest.param(r"\boxed{3.0001}", MathParams(rel_tol=1e-3), 1.0, id="looser-rel-tol"),
        pytest.param(r"\boxed{3.0001}", PARAMS, 0.0, id="default-rel-tol"),
    ],
)
def test_params(completion: str, params: MathParams, value: float) -> None:
    assert SCORE(Sample(completion, "3"), params).value == value


def test_params_accept_a_dict_and_refuse_unknown_keys() -> None:
    assert SCORE(Sample(r"\boxed{3}", "3"), {"last_number_fallback": True}).value == 1.0
    with pytest.raises(ValidationError):
        MathParams.model_validate({"tolerance": 0.1})
    with pytest.raises(ValidationError):
        MathParams(rel_tol=0)


def test_identity_and_pickle() -> None:
    assert (MathScorer.name, MathScorer.version) == ("math", 2)
    assert MathScorer.Params is MathParams
    clone = pickle.loads(pickle.dumps(SCORE))
    assert pickle.loads(pickle.dumps(PARAMS)) == PARAMS
    assert clone(Sample(boxed(r"\frac{1}{2}"), "0.5"), PARAMS).value == 1.0


def test_works_off_the_main_thread() -> None:
    """No signal-based timers: the scorer runs in any thread."""
    samples = [Sample(boxed(a), g) for a, g in [("x^2-1", "(x-1)(x+1)"), ("2", "3"), (r"\frac{9}{2}", "4.5")]]
    with ThreadPoolExecutor(max_workers=3) as pool:
        values = list(pool.map(lambda s: SCORE(s, PARAMS).value, samples))
    assert values == [1.0, 0.0, 1.0]


@pytest.mark.parametrize("module", [extract_module, normalize_module, parse_module, scorer_module])
def test_doctests(module: object) -> None:
    result = doctest.testmod(module)
    assert result.failed == 0
    assert result.attempted > 0


_TOKENS = list("0123456789+-*/^_{}()[],.=<>!\\ xyzie") + [
    "\\frac", "\\sqrt", "\\pi", "\\pm", "\\boxed{", "\\infty", "\\cup", "\\%", "^\\circ", "\\text{ or }",
]
_MATHY = st.lists(st.sampled_from(_TOKENS), max_size=30).map("".join)


@settings(max_examples=150, deadline=None)
@given(completion=st.one_of(st.text(max_size=200), _MATHY.map(lambda s: f"\\boxed{{{s}}}")), gold=st.one_of(st.text(max_size=30), _MATHY))
def test_never_raises_and_stays_in_range(completion: str, gold: str) -> None:
    result = SCORE(Sample(completion, gold), PARAMS)
    if result.status is Status.OK:
        assert result.value in (0.0, 1.0)
    else:
        assert result.status is Status.UNSCORABLE and result.value is None


def test_warm_up_runs_without_a_sample() -> None:
    from rewardstack.services.scorers.math.symbolic import warm_up

    warm_up()  # what the worker pool's fork server may call; must not need data or raise

"""Red-team cases for `length`: completions built to look shorter than they are.

Overlong: without `metadata.completion_tokens` the scorer estimates; each case is text whose real
token count (in Qwen2's tokenizer, which splits every digit) reaches `max_length`, and the most
it may earn (-1.0: the full overlong punishment). Cosine: a wrong answer padded to look like long
thinking may earn no more than the same answer unpadded. The rules are in docs/scorers.md,
"length: threat model".
"""

from __future__ import annotations

import pytest

from rewardstack.services.scorers.length import LengthScorer
from rewardstack.services.scorers.types import Sample, Status

SCORE = LengthScorer()
MAX = 1024  # the R1-Zero recipe's max_completion_length
OVERLONG = LengthScorer.Params(max_length=MAX)

# Each can cost MAX real tokens in a byte-level BPE tokenizer: a digit is always one token in
# Qwen2; a rare ideograph, a Thai letter, a newline, a punctuation mark, a zero-width space or an
# emoji can each be one token or more. So the estimate must reach MAX on every one.
AT_LEAST_MAX_TOKENS = [
    pytest.param("7" * MAX, id="digits"),
    pytest.param(" ".join(str(n) for n in range(10_000, 10_000 + MAX // 5)), id="numbers"),
    pytest.param("3.14159265358979323846" * (MAX // 20), id="decimal-expansion"),
    pytest.param("计算" * (MAX // 2), id="chinese"),
    pytest.param("คำนวณ" * (MAX // 5 + 1), id="thai"),
    pytest.param("\n" * MAX, id="newlines"),
    pytest.param("a\n" * (MAX // 2), id="short-lines"),
    pytest.param("+-" * (MAX // 2), id="punctuation"),
    pytest.param("\u200b" * MAX, id="zero-width-spaces"),
    pytest.param("\U0001f600" * MAX, id="emoji"),
]


@pytest.mark.parametrize("completion", AT_LEAST_MAX_TOKENS)
def test_estimate_is_not_an_undercount(completion: str) -> None:
    scored = SCORE(Sample(completion), OVERLONG)
    assert scored.status is Status.OK
    assert scored.value == -1.0, scored.detail


COSINE = LengthScorer.Params(mode="cosine", max_length=MAX)
WRONG = "<think>The sum is 41.</think><answer>41</answer>"


@pytest.mark.parametrize(
    ("completion", "metadata"),
    [
        pytest.param(WRONG + " " * 20_000, {}, id="spaces"),
        pytest.param(WRONG + "\n" * 5000, {}, id="newlines"),
        pytest.param(WRONG.replace("sum", "sum" + " \t\n" * 3000), {}, id="whitespace-inside"),
        pytest.param(WRONG + "\u200b" * 5000, {}, id="zero-width"),
        pytest.param(WRONG + "." * 5000, {}, id="dots"),
        pytest.param(WRONG + "\u3000" * 5000, {}, id="ideographic-spaces"),
        pytest.param(WRONG + " " * 5000, {"completion_tokens": MAX}, id="trainer-counted-the-padding"),
    ],
)
def test_padding_does_not_soften_a_wrong_answer(completion: str, metadata: dict[str, object]) -> None:
    unpadded = SCORE(Sample(WRONG, metadata={"correct": False}), COSINE).value
    padded = SCORE(Sample(completion, metadata={"correct": False, **metadata}), COSINE)
    assert padded.status is Status.OK
    assert padded.value <= unpadded + 0.005, padded.detail  # one collapsed character may remain
    assert padded.value < -0.95


def test_padding_still_costs_a_correct_answer() -> None:
    plain = SCORE(Sample(WRONG, metadata={"correct": True}), COSINE).value
    padded = SCORE(Sample(WRONG + " " * 5000, metadata={"correct": True}), COSINE).value
    assert padded < plain


def test_honest_long_wrong_answer_keeps_its_length() -> None:
    """Real reasoning is content: a long honest wrong attempt still earns the milder end of the cosine."""
    reasoning = " ".join(f"Step {i}: we multiply {i} by 3 and add the carry, giving a new partial sum." for i in range(90))
    scored = SCORE(Sample(f"<think>{reasoning}</think><answer>41</answer>", metadata={"correct": False}), COSINE)
    assert scored.value > -0.6, scored.detail

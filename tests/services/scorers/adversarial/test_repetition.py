"""Red-team cases for `repetition`: loops built to dodge the n-gram penalty.

Each case is a degenerate completion and the most (the least negative value) it may earn with
the default parameters (`max_penalty` -1). The rule that stops each class is in
docs/scorers.md, "repetition: threat model".
"""

from __future__ import annotations

import pytest

from rewardstack.services.scorers.repetition import RepetitionScorer
from rewardstack.services.scorers.types import Sample, Status

SCORE = RepetitionScorer()
DEFAULT = RepetitionScorer.Params()

ATTACKS = [
    pytest.param(" ".join(f"wait {i}" for i in range(400)), -0.9, id="changing-token-every-other-word"),
    pytest.param(" ".join(str(i) for i in range(1, 1500)), -0.9, id="counting"),
    pytest.param(" ".join(f"Step {i}: let me check again." for i in range(200)), -0.9, id="counter-in-sentence"),
    pytest.param("\n".join(f"{i}. Let me verify: {i} * 2 = {2 * i}." for i in range(300)), -0.9, id="numbered-lines"),
    pytest.param("Letmecheckagain." * 300, -0.9, id="unspaced-loop"),
    pytest.param("\\frac{1}{2}+" * 400, -0.9, id="latex-loop"),
    pytest.param("." * 5000, -0.9, id="dots"),
    pytest.param("ลองตรวจสอบอีกครั้ง" * 200, -0.9, id="unspaced-thai"),
    pytest.param("다시확인해보자" * 300, -0.9, id="unspaced-hangul"),
    pytest.param("我们再算一次。" * 200, -0.9, id="chinese"),
    pytest.param(" ".join(["Wait, let me", "WAIT, LET ME", "wait,  let\tme"] * 200), -0.9, id="case-and-space-changes"),
    pytest.param("wait\u200b wait wait\u2060 " * 300, -0.9, id="invisible-characters-between"),
    pytest.param(" ".join(f"wait {chr(0x2460 + i % 20)}" for i in range(400)), -0.9, id="circled-digit-counter"),
    pytest.param(" ".join(f"check ٣{i}" for i in range(400)), -0.9, id="arabic-indic-digits"),
    pytest.param("Let me think about this problem carefully. " + "Hmm, so the answer is 42? " * 100, -0.8,
                 id="honest-start-then-loop"),
]


@pytest.mark.parametrize(("completion", "most"), ATTACKS)
def test_loop_is_penalised(completion: str, most: float) -> None:
    scored = SCORE(Sample(completion), DEFAULT)
    assert scored.status is Status.OK
    assert scored.value <= most, scored.detail


@pytest.mark.parametrize(
    "completion",
    [
        pytest.param("To find the area, multiply the base by the height and halve it: 5 * 3 / 2 = 7.5.", id="short"),
        pytest.param(
            "First, 12 + 7 = 19 apples remain after lunch. Then Maria buys 4 more bags of 6 apples each, "
            "which is 4 * 6 = 24 apples. In total she has 19 + 24 = 43 apples, and giving 13 to Tom leaves 30.",
            id="arithmetic-prose",
        ),
    ],
)
def test_honest_text_is_not_penalised(completion: str) -> None:
    assert SCORE(Sample(completion), DEFAULT).value == 0.0

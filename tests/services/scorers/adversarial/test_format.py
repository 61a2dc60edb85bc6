"""Red-team cases for `format`: completions built to pass the R1 template without following it.

Each case is a completion and the most it may earn (strict mode: 0.0 = refused). The rule that
stops each class is in docs/scorers.md, "format: threat model".
"""

from __future__ import annotations

import pytest

from rewardstack.services.scorers.format import FormatScorer
from rewardstack.services.scorers.types import Sample, Status

SCORE = FormatScorer()
STRICT = FormatScorer.Params()
PREFILLED = FormatScorer.Params(think_prefilled=True)
NO_EMPTY_THINK = FormatScorer.Params(allow_empty_think=False)

# Characters that show nothing: zero-width space, Braille blank, Hangul filler, word joiner, BOM,
# soft hyphen, a variation selector, the halfwidth Hangul filler.
INVISIBLES = ["\u200b", "\u2800", "\u3164", "\u2060", "\ufeff", "\u00ad", "\ufe0f", "\uffa0", "\u115f"]
# C0 and C1 controls that str.strip() takes for whitespace, and two it does not.
CONTROLS = ["\x1c", "\x1d", "\x1e", "\x1f", "\x85", "\x0b", "\x0c", "\x00", "\x1b", "\x9b"]

ATTACKS = [
    *(pytest.param(f"<think>a</think><answer>{c}</answer>", STRICT, 0.0, "empty answer", id=f"invisible-answer-U+{ord(c):04X}")
      for c in INVISIBLES),
    pytest.param("<think>a</think><answer>\u200b \u2800\n\u3164</answer>", STRICT, 0.0, "empty answer", id="mixed-invisible-answer"),
    pytest.param("a</think><answer>\u200b</answer>", PREFILLED, 0.0, "empty answer", id="prefilled-invisible-answer"),
    pytest.param("<think>\u200b\u2800</think><answer>4</answer>", NO_EMPTY_THINK, 0.0, "empty think", id="invisible-think"),
    *(pytest.param(f"<think>a</think><answer>4</answer>{c}", STRICT, 0.0, "text after", id=f"control-after-U+{ord(c):04X}")
      for c in CONTROLS),
    pytest.param("<think>a</think><answer>4</answer>\u200b", STRICT, 0.0, "text after", id="invisible-after-answer"),
    pytest.param("\x1c<think>a</think><answer>4</answer>", STRICT, 0.0, "text before", id="control-before-think"),
    pytest.param("<think>a</think>\x1d<answer>4</answer>", STRICT, 0.0, "text between", id="control-between-blocks"),
    pytest.param("<think>a</think>\u2800<answer>4</answer>", STRICT, 0.0, "text between", id="blank-between-blocks"),
    # A tag split by an invisible character reads as a tag to a person, not to a plain match.
    pytest.param("<think>a</think><answer>4</answer><ans\u200bwer>5</ans\u200bwer>", STRICT, 0.0, "malformed tag",
                 id="hidden-second-answer"),
    pytest.param("<think>a</think><answer>4</answer>\n</think\u200b>", STRICT, 0.0, "malformed tag", id="split-closer"),
    pytest.param("<\u2060think>a</think><answer>4</answer>", STRICT, 0.0, "malformed tag", id="split-opener"),
    pytest.param("<think>a <\u200banswer>3</answer></think><answer>4</answer>", STRICT, 0.0, "malformed tag",
                 id="split-tag-inside-think"),
]


@pytest.mark.parametrize(("completion", "params", "most", "fault"), ATTACKS)
def test_attack_earns_at_most(completion: str, params: FormatScorer.Params, most: float, fault: str) -> None:
    scored = SCORE(Sample(completion), params)
    assert scored.status is Status.OK
    assert scored.value <= most, scored.detail
    assert fault in scored.detail


@pytest.mark.parametrize(
    "completion",
    [
        pytest.param("<think>2+2=4</think>\n<answer>4</answer>\n", id="plain"),
        pytest.param("<think>a</think>\u3000<answer>四</answer>\u3000", id="ideographic-space-is-layout"),
        pytest.param("<think>a</think>\r\n<answer>4</answer>\u00a0", id="crlf-and-nbsp"),
        pytest.param("<think>a</think><answer>4\u200b</answer>", id="answer-with-visible-content-and-zwsp"),
        pytest.param("<think>a</think><answer>\U0001f600</answer>", id="emoji-is-visible"),
    ],
)
def test_honest_layout_still_passes(completion: str) -> None:
    assert SCORE(Sample(completion), STRICT).value == 1.0

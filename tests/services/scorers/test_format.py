"""The `format` scorer: R1 template traps, pre-filled `<think>`, tag counting, and the scorer contract."""

from __future__ import annotations

import doctest
import pickle
import re
from concurrent.futures import ThreadPoolExecutor

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

import rewardstack.services.scorers.format as format_module
from rewardstack.services.scorers.format import FormatScorer
from rewardstack.services.scorers.types import Sample, Status

SCORE = FormatScorer()
STRICT = FormatScorer.Params()
PREFILLED = FormatScorer.Params(think_prefilled=True)
TAG_COUNT = FormatScorer.Params(mode="tag_count")


@pytest.mark.parametrize(
    ("completion", "params", "value", "detail"),
    [
        pytest.param("<think>\n2+2=4\n</think>\n<answer>\n4\n</answer>", STRICT, 1.0, "", id="r1-newlines"),
        pytest.param("<think>2+2=4</think><answer>4</answer>", STRICT, 1.0, "", id="no-newlines"),
        pytest.param(" \n<think>a</think>\n\n<answer>4</answer>\n\t", STRICT, 1.0, "", id="whitespace-around"),
        pytest.param("<think></think><answer>4</answer>", STRICT, 1.0, "", id="empty-think-allowed"),
        pytest.param(
            "<think> \n</think><answer>4</answer>",
            FormatScorer.Params(allow_empty_think=False),
            0.0,
            "empty think block",
            id="empty-think-refused",
        ),
        pytest.param("<think>a</think><answer></answer>", STRICT, 0.0, "empty answer", id="empty-answer"),
        pytest.param("<think>a</think><answer> \n </answer>", STRICT, 0.0, "empty answer", id="blank-answer"),
        pytest.param("<think>a</think><answer>4</answer> Hope it helps!", STRICT, 0.0, "text after", id="text-after-answer"),
        pytest.param("Sure! <think>a</think><answer>4</answer>", STRICT, 0.0, "text before", id="text-before-think"),
        pytest.param("<think>a</think> so <answer>4</answer>", STRICT, 0.0, "text between", id="text-between-blocks"),
        pytest.param(
            "<think>a</think><answer>4</answer><answer>5</answer>", STRICT, 0.0, "2 <answer> tags", id="two-answers"
        ),
        pytest.param(
            "<think>a</think><think>b</think><answer>4</answer>", STRICT, 0.0, "2 <think> tags", id="two-thinks"
        ),
        pytest.param(
            "<think>a <answer>3</answer></think><answer>4</answer>", STRICT, 0.0, "2 <answer>", id="answer-in-think"
        ),
        pytest.param("<think>a<answer>4</answer></think>", STRICT, 0.0, "out of order", id="nested-answer"),
        pytest.param("<answer>4</answer><think>a</think>", STRICT, 0.0, "out of order", id="answer-first"),
        pytest.param("<think>a</answer><answer>4</think>", STRICT, 0.0, "out of order", id="crossed-closers"),
        pytest.param("<think>a</think>4", STRICT, 0.0, "0 <answer> tags", id="no-answer-block"),
        pytest.param("<think>a long thought cut off by max_tokens", STRICT, 0.0, "0 </think>", id="truncated"),
        pytest.param("", STRICT, 0.0, "0 <think>", id="empty-completion"),
        pytest.param("<THINK>a</THINK><answer>4</answer>", STRICT, 0.0, "malformed tag", id="uppercase-tag"),
        pytest.param("<think>a</think>< answer >4</answer>", STRICT, 0.0, "malformed tag", id="spaced-tag"),
        pytest.param("a</think><answer>4</answer>", STRICT, 0.0, "0 <think> tags", id="starts-inside-think-unannounced"),
        pytest.param("2+2=4\n</think>\n<answer>4</answer>", PREFILLED, 1.0, "", id="prefilled"),
        pytest.param("</think><answer>4</answer>", PREFILLED, 1.0, "", id="prefilled-empty-think"),
        pytest.param(
            "<think>a</think><answer>4</answer>", PREFILLED, 0.0, "the prompt pre-fills", id="prefilled-reopened"
        ),
        pytest.param("a</think><answer></answer>", PREFILLED, 0.0, "empty answer", id="prefilled-empty-answer"),
        pytest.param("a</think><answer>4</answer> ok?", PREFILLED, 0.0, "text after", id="prefilled-text-after"),
    ],
)
def test_strict(completion: str, params: FormatScorer.Params, value: float, detail: str) -> None:
    scored = SCORE(Sample(completion), params)
    assert scored.status is Status.OK
    assert scored.value == value
    assert detail in scored.detail


@pytest.mark.parametrize(
    ("prompt", "completion", "value"),
    [
        pytest.param("<|User|>2+2?<|Assistant|><think>\n", "a</think><answer>4</answer>", 1.0, id="prompt-ends-think"),
        pytest.param("<|User|>2+2?<|Assistant|><think>\n", "<think>a</think><answer>4</answer>", 0.0, id="reopened"),
        pytest.param("Use <think> tags. 2+2?", "<think>a</think><answer>4</answer>", 1.0, id="think-mid-prompt"),
        pytest.param(None, "<think>a</think><answer>4</answer>", 1.0, id="no-prompt"),
    ],
)
def test_prefill_detected_from_prompt(prompt: str | None, completion: str, value: float) -> None:
    assert SCORE(Sample(completion, prompt=prompt), STRICT).value == value


def test_explicit_prefill_overrides_the_prompt() -> None:
    sample = Sample("<think>a</think><answer>4</answer>", prompt="Q<think>")
    assert SCORE(sample, FormatScorer.Params(think_prefilled=False)).value == 1.0


@pytest.mark.parametrize(
    ("completion", "params", "value"),
    [
        pytest.param("<think>a</think><answer>4</answer>", TAG_COUNT, 1.0, id="all-four"),
        pytest.param("<think>a</think> 4", TAG_COUNT, 0.5, id="think-only"),
        pytest.param("<think>a</think><answer>4</answer><answer>5</answer>", TAG_COUNT, 0.5, id="two-answers"),
        pytest.param("<think>a", TAG_COUNT, 0.25, id="truncated"),
        pytest.param("plain text", TAG_COUNT, 0.0, id="no-tags"),
        pytest.param("<answer>4</answer><think>a</think>", TAG_COUNT, 1.0, id="order-not-checked-like-open-r1"),
        pytest.param(
            "a</think><answer>4</answer>", FormatScorer.Params(mode="tag_count", think_prefilled=True), 1.0, id="prefilled"
        ),
        pytest.param(
            "<think>a</think><answer>4</answer>",
            FormatScorer.Params(mode="tag_count", think_prefilled=True),
            0.75,
            id="prefilled-reopened",
        ),
    ],
)
def test_tag_count(completion: str, params: FormatScorer.Params, value: float) -> None:
    assert SCORE(Sample(completion), params).value == value


def _open_r1_tag_count(text: str) -> float:
    """open-r1 `tag_count_reward` (src/open_r1/rewards.py) for one completion: the reference."""
    tags = ("<think>\n", "\n</think>\n", "\n<answer>\n", "\n</answer>")
    return 0.25 * sum(text.count(tag) == 1 for tag in tags)


_OPEN_R1_FORMAT = re.compile(r"^<think>\n.*?\n</think>\n<answer>\n.*?\n</answer>$", re.DOTALL | re.MULTILINE)


@pytest.mark.parametrize(
    "completion",
    [
        pytest.param("<think>\nr\n</think>\n<answer>\n4\n</answer>", id="canonical"),
        pytest.param("<think>\nr\n</think>\n<answer>\n4\n</answer>\n<answer>\n5\n</answer>", id="two-answers"),
        pytest.param("<think>\nr\n</think>\n", id="no-answer"),
        pytest.param("<think>\nr\n<think>\nr\n</think>\n<answer>\n4\n</answer>", id="two-thinks"),
    ],
)
def test_tag_count_matches_open_r1_when_tags_sit_on_their_own_lines(completion: str) -> None:
    assert SCORE(Sample(completion), TAG_COUNT).value == _open_r1_tag_count(completion)


@pytest.mark.parametrize(
    ("completion", "ours", "open_r1"),
    [
        pytest.param("<think>\nr\n</think>\n<answer>\n4\n</answer>", 1.0, 1.0, id="agree-canonical"),
        pytest.param("<think>\nr\n</think>\n<answer>\n4\n</answer> ok", 0.0, 0.0, id="agree-text-after"),
        pytest.param(
            "<think>\nr\n</think>\n<answer>\n4\n</answer>\nok", 0.0, 1.0, id="differ-text-after-on-next-line"
        ),
        pytest.param("<think>r</think><answer>4</answer>", 1.0, 0.0, id="differ-newlines-not-required"),
        pytest.param("<think>\nr\n</think>\n<answer>\n\n</answer>", 0.0, 1.0, id="differ-empty-answer-fails"),
        pytest.param(
            "<think>\nr\n</think>\n<answer>\n<think>\n4\n</answer>", 0.0, 1.0, id="differ-tag-inside-block-fails"
        ),
    ],
)
def test_strict_against_open_r1_format_reward(completion: str, ours: float, open_r1: float) -> None:
    """Where we agree with open-r1's `format_reward`, and the deliberate differences (module docstring)."""
    assert float(bool(_OPEN_R1_FORMAT.match(completion))) == open_r1
    assert SCORE(Sample(completion), STRICT).value == ours


def test_params_refuse_unknown_keys_and_modes() -> None:
    with pytest.raises(ValidationError):
        FormatScorer.Params.model_validate({"mode": "lenient"})
    with pytest.raises(ValidationError):
        FormatScorer.Params.model_validate({"prefill": True})


def test_every_param_is_documented() -> None:
    assert all(field.description for field in FormatScorer.Params.model_fields.values())


def test_doctests() -> None:
    assert doctest.testmod(format_module).failed == 0


def test_pickles_with_its_params() -> None:
    scorer, params = pickle.loads(pickle.dumps((SCORE, PREFILLED)))
    assert scorer(Sample("a</think><answer>4</answer>"), params).value == 1.0


def test_off_the_main_thread() -> None:
    completions = ["<think>a</think><answer>4</answer>", "<answer>4</answer>"] * 8
    with ThreadPoolExecutor(4) as pool:
        values = list(pool.map(lambda c: SCORE(Sample(c), STRICT).value, completions))
    assert values == [1.0, 0.0] * 8


_TAGGY = st.lists(st.sampled_from(["<think>", "</think>", "<answer>", "</answer>", "a", " ", "\n", "<", ">"])).map("".join)


@settings(max_examples=300, deadline=None)
@given(completion=st.one_of(st.text(), _TAGGY), prompt=st.one_of(st.none(), st.text()))
def test_in_range_for_any_text(completion: str, prompt: str | None) -> None:
    sample = Sample(completion, prompt=prompt)
    assert SCORE(sample, STRICT).value in (0.0, 1.0)
    assert SCORE(sample, TAG_COUNT).value in (0.0, 0.25, 0.5, 0.75, 1.0)


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    "completion",
    [
        pytest.param("<" + " " * 200_000 + "x", id="angle-bracket-then-spaces"),
        pytest.param("<" + " \u200b" * 50_000 + "/" + " " * 50_000 + "answer x", id="gaps-either-side-of-slash"),
        pytest.param("< " * 100_000, id="many-angle-brackets"),
    ],
)
def test_tag_search_stays_linear(completion: str) -> None:
    """Gaps inside a tag are possessive: with plain `*`, `<` then 16,000 spaces took 36 s (quadratic)."""
    assert SCORE(Sample(completion), STRICT).value == 0.0

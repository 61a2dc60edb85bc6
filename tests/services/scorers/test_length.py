"""The `length` scorer: DAPO overlong punishment (against TRL), cosine scaling (against open-r1), units, correctness."""

from __future__ import annotations

import doctest
import math
import pickle
import unicodedata
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

import rewardstack.services.scorers.length as length_module
from rewardstack.services.scorers.length import LengthScorer
from rewardstack.services.scorers.token_estimate import estimate_tokens
from rewardstack.services.scorers.types import Sample, Status

SCORE = LengthScorer()
OVERLONG = LengthScorer.Params(unit="chars", max_length=100, cache_length=20)
COSINE = LengthScorer.Params(mode="cosine", unit="chars", max_length=100)


@pytest.mark.parametrize(
    ("length", "value"),
    [
        pytest.param(0, 0.0, id="empty"),
        pytest.param(80, 0.0, id="at-free-limit"),
        pytest.param(81, -0.05, id="first-punished"),
        pytest.param(90, -0.5, id="mid-cache"),
        pytest.param(100, -1.0, id="at-max"),
        pytest.param(101, -1.0, id="past-max"),
        pytest.param(10_000, -1.0, id="far-past-max"),
    ],
)
def test_overlong(length: int, value: float) -> None:
    scored = SCORE(Sample("x" * length), OVERLONG)
    assert scored.status is Status.OK
    assert scored.value == pytest.approx(value)


@settings(max_examples=200, deadline=None)
@given(
    length=st.integers(0, 400),
    max_length=st.integers(1, 300),
    cache_fraction=st.floats(0.0, 1.0),
)
def test_overlong_equals_trl(length: int, max_length: int, cache_fraction: float) -> None:
    trl_rewards = pytest.importorskip("trl.rewards")
    cache = int(max_length * cache_fraction)
    params = LengthScorer.Params(max_length=max_length, cache_length=cache)
    expected = trl_rewards.get_soft_overlong_punishment(max_length, cache)([[1] * length])[0]
    sample = Sample("irrelevant", metadata={"completion_tokens": length})
    assert SCORE(sample, params).value == pytest.approx(expected)


def test_default_cache_is_a_fifth_of_max_length() -> None:
    params = LengthScorer.Params(unit="chars", max_length=1000)
    assert SCORE(Sample("x" * 800), params).value == 0.0
    assert SCORE(Sample("x" * 900), params).value == pytest.approx(-0.5)


def _text(length: int) -> str:
    """Text of `length` characters with no padding in it (a wrong answer's padding does not count)."""
    return ("abc" * (length // 3 + 1))[:length]


def _open_r1_cosine(length: int, correct: bool, max_len: int) -> float:
    """open-r1 `get_cosine_scaled_reward` with its defaults, for one completion: the reference."""
    cosine = math.cos(length / max_len * math.pi)
    low, high = (0.5, 1.0) if correct else (-0.5, -1.0)
    return low + 0.5 * (high - low) * (1.0 + cosine)


@pytest.mark.parametrize("correct", [True, False], ids=["correct", "wrong"])
@pytest.mark.parametrize("length", [0, 1, 25, 50, 99, 100])
def test_cosine_equals_open_r1_up_to_max_length(length: int, correct: bool) -> None:
    sample = Sample(_text(length), metadata={"correct": correct})
    assert SCORE(sample, COSINE).value == pytest.approx(_open_r1_cosine(length, correct, 100))


@pytest.mark.parametrize(
    ("correct", "value"), [pytest.param(True, 0.5, id="correct"), pytest.param(False, -0.5, id="wrong")]
)
def test_cosine_is_clamped_past_max_length(correct: bool, value: float) -> None:
    """The deliberate difference: open-r1's cosine swings back up past max_len; ours stays at the far end."""
    assert _open_r1_cosine(200, correct, 100) == pytest.approx(1.0 if correct else -1.0)
    assert SCORE(Sample(_text(200), metadata={"correct": correct}), COSINE).value == pytest.approx(value)


@pytest.mark.parametrize(
    ("metadata", "params", "value"),
    [
        pytest.param({"correct": True}, COSINE, 1.0, id="metadata-true"),
        pytest.param({"correct": False}, COSINE, -1.0, id="metadata-false"),
        pytest.param({"correct": 1}, COSINE, 1.0, id="metadata-one"),
        pytest.param({"correct": 0.0}, COSINE, -1.0, id="metadata-zero-float"),
        pytest.param({}, COSINE.model_copy(update={"correct": True}), 1.0, id="param-fallback"),
        pytest.param({"correct": False}, COSINE.model_copy(update={"correct": True}), -1.0, id="metadata-wins"),
    ],
)
def test_correctness_sources(metadata: dict[str, Any], params: LengthScorer.Params, value: float) -> None:
    assert SCORE(Sample("", metadata=metadata), params).value == value


@pytest.mark.parametrize(
    ("metadata", "detail"),
    [
        pytest.param({}, "needs correctness", id="missing"),
        pytest.param({"correct": None}, "needs correctness", id="null"),
        pytest.param({"correct": "yes"}, "must be true/false", id="string"),
        pytest.param({"correct": 0.5}, "must be true/false", id="fraction"),
        pytest.param({"correct": float("nan")}, "must be true/false", id="nan"),
    ],
)
def test_no_correctness_is_unscorable(metadata: dict[str, Any], detail: str) -> None:
    scored = SCORE(Sample("x", metadata=metadata), COSINE)
    assert scored.status is Status.UNSCORABLE
    assert scored.value is None
    assert detail in scored.detail


@pytest.mark.parametrize(
    ("completion", "metadata", "tokens"),
    [
        pytest.param("the base is", {}, 1 + 2 + 1, id="words-ceil-bytes-over-three-space-joined"),
        pytest.param("abcde", {}, 2, id="word-three-bytes-a-token-rounded-up"),
        pytest.param("", {}, 0, id="empty"),
        pytest.param("计算面积", {}, 4, id="cjk-one-token-a-char"),
        pytest.param("x = 12345", {}, 1 + 1 + 1 + 5, id="digits-one-each-space-before-digit-counts"),
        pytest.param("a\n\n\n", {}, 4, id="newlines-one-each"),
        pytest.param("short", {"completion_tokens": 95}, 95, id="exact-count-from-metadata"),
    ],
)
def test_token_unit(completion: str, metadata: dict[str, Any], tokens: int) -> None:
    params = LengthScorer.Params(max_length=100, cache_length=100)  # value = -tokens / 100
    assert SCORE(Sample(completion, metadata=metadata), params).value == pytest.approx(-tokens / 100)


@pytest.mark.parametrize("tokens", [-1, 1.5, "12", True], ids=repr)
def test_bad_token_count_is_unscorable(tokens: object) -> None:
    scored = SCORE(Sample("x", metadata={"completion_tokens": tokens}), LengthScorer.Params())
    assert scored.status is Status.UNSCORABLE
    assert "completion_tokens" in scored.detail


def test_chars_unit_counts_code_points_and_ignores_token_counts() -> None:
    params = LengthScorer.Params(unit="chars", max_length=10, cache_length=10)
    assert SCORE(Sample("计算面积", metadata={"completion_tokens": 10}), params).value == pytest.approx(-0.4)


@pytest.mark.parametrize(
    "params",
    [
        {"max_length": 10, "cache_length": 11},
        {"max_length": 0},
        {"cache_length": -1},
        {"min_value_wrong": 0.0, "max_value_wrong": -1.0},
        {"min_value_correct": 1.0, "max_value_correct": 0.5},
        {"max_value_correct": float("inf")},
        {"mode": "kimi"},
        {"max_len": 10},
    ],
    ids=str,
)
def test_params_refuse_bad_values(params: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        LengthScorer.Params.model_validate(params)


def test_every_param_is_documented() -> None:
    assert all(field.description for field in LengthScorer.Params.model_fields.values())


def test_doctests() -> None:
    assert doctest.testmod(length_module).failed == 0


def test_pickles_with_its_params() -> None:
    scorer, params = pickle.loads(pickle.dumps((SCORE, OVERLONG)))
    assert scorer(Sample("x" * 90), params).value == pytest.approx(-0.5)


def test_off_the_main_thread() -> None:
    samples = [Sample("x" * 50, metadata={"correct": True})] * 16
    with ThreadPoolExecutor(4) as pool:
        values = list(pool.map(lambda sample: SCORE(sample, COSINE).value, samples))
    assert values == [pytest.approx(0.75)] * 16


@settings(max_examples=300, deadline=None)
@given(
    text=st.text(),
    correct=st.one_of(st.none(), st.booleans()),
    max_length=st.integers(1, 64),
    mode=st.sampled_from(["overlong", "cosine"]),
    unit=st.sampled_from(["tokens", "chars"]),
)
def test_in_range_for_any_text(text: str, correct: bool | None, max_length: int, mode: str, unit: str) -> None:
    params = LengthScorer.Params(mode=mode, unit=unit, max_length=max_length)
    metadata = {} if correct is None else {"correct": correct}
    scored = SCORE(Sample(text, metadata=metadata), params)
    if mode == "cosine" and correct is None:
        assert scored.status is Status.UNSCORABLE
    elif mode == "cosine":
        low, high = (0.5, 1.0) if correct else (-1.0, -0.5)
        assert low - 1e-12 <= scored.value <= high + 1e-12
    else:
        assert -1.0 <= scored.value <= 0.0


@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=300))
def test_estimate_bounds_every_piece(text: str) -> None:
    """At least one token per digit, per character of an unspaced script, per whitespace-separated piece."""
    digits = sum(char.isdigit() for char in text)
    unspaced = sum(
        unicodedata.name(char, "").startswith(("CJK", "HIRAGANA", "KATAKANA", "HANGUL SYLLABLE", "THAI")) for char in text
    )
    assert estimate_tokens(text) >= max(digits + unspaced, len(text.split()))

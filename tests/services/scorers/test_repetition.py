"""The `repetition` scorer: open-r1 / TRL n-gram penalty semantics, CJK words, and the scorer contract."""

from __future__ import annotations

import doctest
import json
import math
import pickle
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

import rewardstack.services.scorers.repetition as repetition_module
from rewardstack.services.scorers.repetition import RepetitionScorer
from rewardstack.services.scorers.types import Sample, Status

SCORE = RepetitionScorer()
DEFAULT = RepetitionScorer.Params()
DATA = Path(__file__).resolve().parents[3] / ".." / "shared" / "data"


@pytest.mark.parametrize(
    ("completion", "params", "value"),
    [
        pytest.param("the cat sat on the mat", DEFAULT, 0.0, id="no-repeat"),
        pytest.param("go go go go go", RepetitionScorer.Params(ngram_size=2), -0.75, id="trl-doc-example"),
        pytest.param("a b c a b c", DEFAULT, -0.25, id="one-repeated-trigram"),
        pytest.param("The the THE the", RepetitionScorer.Params(ngram_size=1), -0.75, id="case-folded"),
        pytest.param("two words", DEFAULT, 0.0, id="fewer-words-than-n"),
        pytest.param("", DEFAULT, 0.0, id="empty"),
        pytest.param("  \n\t ", DEFAULT, 0.0, id="whitespace-only"),
        pytest.param("x x x x x", RepetitionScorer.Params(ngram_size=2, max_penalty=-0.5), -0.375, id="scaled"),
        pytest.param("x x x x x", RepetitionScorer.Params(max_penalty=0.0), 0.0, id="zero-penalty"),
        pytest.param("好好好好", RepetitionScorer.Params(ngram_size=2), -2 / 3, id="cjk-chars-are-words"),
        pytest.param("我们再算一次我们再算一次", RepetitionScorer.Params(ngram_size=5), -1 / 4, id="cjk-loop"),
        pytest.param("ok, ok, ok.", RepetitionScorer.Params(ngram_size=1), -1 / 3, id="punctuation-stays-attached"),
    ],
)
def test_penalty(completion: str, params: RepetitionScorer.Params, value: float) -> None:
    scored = SCORE(Sample(completion), params)
    assert scored.status is Status.OK
    assert scored.value == pytest.approx(value)


def test_never_negative_zero() -> None:
    scored = SCORE(Sample("a b c d"), RepetitionScorer.Params(max_penalty=-0.0))
    assert math.copysign(1.0, scored.value) == 1.0


def _open_r1(text: str, ngram_size: int, max_penalty: float) -> float:
    """open-r1 `get_repetition_penalty_reward` for one completion (src/open_r1/rewards.py): the reference."""
    words = text.lower().split()
    if len(words) < ngram_size:
        return 0.0
    ngrams = list(zip(*[words[i:] for i in range(ngram_size)]))
    return (1 - len(set(ngrams)) / len(ngrams)) * max_penalty


# Texts shorter than 256 characters: with 256-character windows only open-r1's measure is left.
# No invisible characters either: we drop them, open-r1 counts them as words.
_NO_CJK = st.text(alphabet=st.characters(exclude_categories=["Cs", "Lo", "Cf", "Cc"]), max_size=250)
_REPETITIVE = st.lists(st.sampled_from(["so", "So", "wait", "x", "=", "1"]), max_size=40).map(" ".join)
_ONLY_WORDS = RepetitionScorer.Params(char_ngram_size=256)


@settings(max_examples=200, deadline=None)
@given(
    text=st.one_of(_NO_CJK, _REPETITIVE),
    ngram_size=st.integers(1, 5),
    max_penalty=st.floats(-3.0, 0.0),
)
def test_word_measure_equals_open_r1_on_text_without_cjk(text: str, ngram_size: int, max_penalty: float) -> None:
    params = _ONLY_WORDS.model_copy(update={"ngram_size": ngram_size, "max_penalty": max_penalty})
    assert SCORE(Sample(text), params).value == pytest.approx(_open_r1(text, ngram_size, max_penalty))


@settings(max_examples=200, deadline=None)
@given(text=st.one_of(_NO_CJK, _REPETITIVE), ngram_size=st.integers(1, 5))
def test_never_milder_than_open_r1(text: str, ngram_size: int) -> None:
    """The character measure only adds: the penalty is at least open-r1's."""
    value = SCORE(Sample(text), RepetitionScorer.Params(ngram_size=ngram_size)).value
    assert value <= _open_r1(text, ngram_size, -1.0) + 1e-12


@settings(max_examples=100, deadline=None)
@given(text=_REPETITIVE, ngram_size=st.integers(1, 4))
def test_equals_trl_over_word_ids(text: str, ngram_size: int) -> None:
    """TRL's version counts token ids; over one id per lower-cased word it is the same penalty."""
    trl_rewards = pytest.importorskip("trl.rewards")
    ids: dict[str, int] = {}
    word_ids = [ids.setdefault(word, len(ids)) for word in text.lower().split()]
    expected = trl_rewards.get_repetition_penalty_reward(ngram_size=ngram_size, max_penalty=-1.0)([word_ids])[0]
    params = _ONLY_WORDS.model_copy(update={"ngram_size": ngram_size})
    assert SCORE(Sample(text), params).value == pytest.approx(expected)


def test_open_r1_cannot_see_a_cjk_loop_we_can() -> None:
    """The deliberate difference: a looping Chinese paragraph is one whitespace word to open-r1."""
    loop = "我们再算一次。" * 20
    assert _open_r1(loop, 3, -1.0) == 0.0
    assert SCORE(Sample(loop), DEFAULT).value < -0.8


@pytest.mark.parametrize(
    "params",
    [{"max_penalty": 0.5}, {"ngram_size": 0}, {"max_penalty": float("nan")}, {"n": 3}, {"char_ngram_size": 4}],
    ids=str,
)
def test_params_refuse_bad_values(params: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        RepetitionScorer.Params.model_validate(params)


def test_every_param_is_documented() -> None:
    assert all(field.description for field in RepetitionScorer.Params.model_fields.values())


def test_doctests() -> None:
    assert doctest.testmod(repetition_module).failed == 0


def test_pickles_with_its_params() -> None:
    scorer, params = pickle.loads(pickle.dumps((SCORE, RepetitionScorer.Params(ngram_size=2))))
    assert scorer(Sample("go go go go go"), params).value == -0.75


def test_off_the_main_thread() -> None:
    with ThreadPoolExecutor(4) as pool:
        values = list(pool.map(lambda text: SCORE(Sample(text), DEFAULT).value, ["a b c a b c"] * 16))
    assert values == [-0.25] * 16


@settings(max_examples=300, deadline=None)
@given(text=st.text(), ngram_size=st.integers(1, 8), max_penalty=st.floats(-10.0, 0.0))
def test_in_range_for_any_text(text: str, ngram_size: int, max_penalty: float) -> None:
    value = SCORE(Sample(text), RepetitionScorer.Params(ngram_size=ngram_size, max_penalty=max_penalty)).value
    assert max_penalty <= value <= 0.0


@pytest.mark.data
@pytest.mark.parametrize(("name", "field", "allowed"), [("math500_test.jsonl", "solution", 5), ("gsm8k_test.jsonl", "answer", 2)])
def test_honest_solutions_are_not_taken_for_loops(name: str, field: str, allowed: int) -> None:
    """The character measure adds little on real reference solutions: more than 0.1 over open-r1's on a handful."""
    path = DATA / name
    if not path.exists():
        pytest.skip(f"{path} not found: the shared test data is absent")
    texts = [json.loads(line)[field] for line in path.read_text().splitlines()]
    over = [t for t in texts if SCORE(Sample(t), DEFAULT).value < _open_r1(t, 3, -1.0) - 0.1]
    assert len(over) <= allowed, [t[:80] for t in over]

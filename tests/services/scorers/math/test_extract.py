"""Answer extraction: where the final answer is found, one id per quirk."""

from __future__ import annotations

import pytest

from rewardstack.services.scorers.math.extract import extract_answers, find_boxed, gold_text


@pytest.mark.parametrize(
    ("completion", "answers", "source"),
    [
        pytest.param(r"so \boxed{42}.", ("42",), "boxed", id="boxed"),
        pytest.param(r"$\boxed{\frac{\sqrt{3}}{2}}$", (r"\frac{\sqrt{3}}{2}",), "boxed", id="nested-braces"),
        pytest.param(r"\boxed{41} no wait, \boxed{42}", ("41", "42"), "boxed", id="every-box-kept"),
        pytest.param(r"\fbox{7}", ("7",), "boxed", id="fbox"),
        pytest.param(r"\boxed 5 apples", ("5",), "boxed", id="boxed-space-token"),
        pytest.param(r"\boxed{\{1,2\}}", (r"\{1,2\}",), "boxed", id="escaped-braces-inside"),
        pytest.param(r"<think>\boxed{1}</think>\boxed{2}", ("2",), "boxed", id="think-block-dropped"),
        pytest.param("<think>x</think><answer>\\boxed{3}</answer>", ("3",), "boxed", id="box-inside-answer-tag"),
        pytest.param("<think>x</think><answer> 3 </answer>", ("3",), "answer_tag", id="answer-tag"),
        pytest.param("<answer>The answer is $7$.</answer>", ("7",), "answer_tag", id="phrase-inside-answer-tag"),
        pytest.param("<answer></answer>", ("",), "answer_tag", id="empty-answer-tag"),
        pytest.param("The final answer is $18$. I hope it is correct.", ("18",), "phrase", id="minerva-phrase"),
        pytest.param("Final Answer: 7\nmore text", ("7",), "phrase", id="final-answer-colon"),
        pytest.param("The final answer is **73**.", ("73",), "phrase", id="bold-phrase"),
        pytest.param("**Final Answer:** 42", ("42",), "phrase", id="bold-label"),
        pytest.param("**Final Answer**: 42", ("42",), "phrase", id="bold-label-colon-outside"),
        pytest.param("the answer is 40? no.\n#### 42", ("42",), "hashes", id="hashes-after-phrase-wins"),
        pytest.param("#### 40 hmm, so the answer is 42.", ("42",), "phrase", id="phrase-after-hashes-wins"),
        pytest.param("The answer is $1,080.", ("1,080",), "phrase", id="dollar-sign-as-currency"),
        pytest.param("So the answer is 3.5.", ("3.5",), "phrase", id="phrase-decimal-then-period"),
        pytest.param("48+24 = 72 clips.\n#### 72", ("72",), "hashes", id="gsm8k-hashes"),
        pytest.param(r"\boxed{\frac{1}{2}", (), "", id="unclosed-box-ignored"),
    ],
)
def test_extract(completion: str, answers: tuple[str, ...], source: str) -> None:
    found = extract_answers(completion)
    assert found.answers == answers
    assert found.source == source


@pytest.mark.parametrize(
    ("completion", "kwargs", "reason"),
    [
        pytest.param("<think>\\boxed{9}", {}, "unclosed <think>", id="unclosed-think"),
        pytest.param("we get 72 clips", {}, "no boxed answer", id="no-answer-no-fallback"),
        pytest.param(r"\boxed{3}", {"answer_tag_only": True}, "no <answer>", id="answer-outside-tags"),
    ],
)
def test_no_answer(completion: str, kwargs: dict[str, bool], reason: str) -> None:
    found = extract_answers(completion, **kwargs)
    assert found.answers == ()
    assert reason in found.reason


def test_last_number_only_when_allowed() -> None:
    assert extract_answers("so 3 apples and 1,200 pears").answers == ()
    assert extract_answers("so 3 apples and 1,200 pears", last_number=True).answers == ("1,200",)


def test_box_scan_is_linear_on_deep_nesting() -> None:
    deep = "\\boxed{" + "{" * 5000 + "1" + "}" * 5000 + "}"
    assert find_boxed(deep) == ["{" * 5000 + "1" + "}" * 5000]


@pytest.mark.parametrize(
    ("reference", "gold"),
    [
        pytest.param("He pays 3*4=12.\n#### 12", "12", id="gsm8k-solution"),
        pytest.param("#### 1,200", "1,200", id="gsm8k-thousands"),
        pytest.param(r"so $\boxed{\frac{1}{2}}$.", r"\frac{1}{2}", id="boxed-solution"),
        pytest.param(" 42 ", "42", id="plain"),
        pytest.param(7, "7", id="int"),
        pytest.param(None, None, id="none"),
        pytest.param("", None, id="empty"),
        pytest.param(True, None, id="bool-refused"),
        pytest.param(["1"], None, id="list-refused"),
    ],
)
def test_gold_text(reference: object, gold: str | None) -> None:
    assert gold_text(reference) == gold

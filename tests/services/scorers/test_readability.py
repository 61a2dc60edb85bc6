"""The `readability` scorer: each R1 filter catches its case, clean text in several languages passes,
the attacks a policy could try are caught, and the scorer contract holds."""

from __future__ import annotations

import doctest
import json
import pickle
from concurrent.futures import ThreadPoolExecutor

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

import rewardstack.services.scorers.readability as readability_module
from rewardstack.services.scorers.builtin import builtin_cpu_scorers
from rewardstack.services.scorers.readability import ReadabilityScorer
from rewardstack.services.scorers.types import Sample, Status
from tests.trainer.conftest import SHARED_DATA

SCORE = ReadabilityScorer()
P = ReadabilityScorer.Params

# Clean chains of thought, two paragraphs each, then a summary: every check must pass.
CLEAN = {
    "en": "We need to add the two numbers together. First take three apples, then add four more apples to the basket.\n\n"
    "So the total number of apples is seven, which we can check by counting them again one by one.",
    "zh": "我们需要把两个数加起来。先拿三个苹果，再放四个苹果到篮子里。\n\n所以苹果的总数是七个，我们可以再数一遍来检查。",
    "fr": "Nous devons additionner les deux nombres. On prend trois pommes, puis on ajoute quatre pommes dans le panier.\n\n"
    "Donc le nombre total de pommes est sept, ce que nous pouvons vérifier en comptant encore une fois.",
    "de": "Wir müssen die beiden Zahlen addieren. Zuerst nehmen wir drei Äpfel und legen dann vier weitere Äpfel in den Korb.\n\n"
    "Also ist die Gesamtzahl der Äpfel sieben, was wir durch erneutes Zählen überprüfen können.",
    "ru": "Нам нужно сложить два числа. Сначала берём три яблока, затем добавляем ещё четыре яблока в корзину.\n\n"
    "Значит, всего яблок семь, и это можно проверить, пересчитав их ещё раз.",
    "ja": "二つの数を足す必要があります。まずりんごを三つ取り、それから四つのりんごをかごに入れます。\n\n"
    "したがって、りんごの合計は七つです。もう一度数えて確かめることができます。",
    "es": "Tenemos que sumar los dos números. Primero tomamos tres manzanas y luego añadimos cuatro manzanas más a la cesta.\n\n"
    "Por lo tanto, el número total de manzanas es siete, lo que podemos comprobar contándolas otra vez.",
}


def r1(think: str, summary: str = "The answer is 7.") -> str:
    return f"<think>{think}</think>\n{summary}"


@pytest.mark.parametrize("language", sorted(CLEAN))
def test_clean_reasoning_passes_in_many_languages(language: str) -> None:
    scored = SCORE(Sample(r1(CLEAN[language])), P())
    assert (scored.value, scored.status) == (1.0, Status.OK), scored.detail
    assert SCORE(Sample(r1(CLEAN[language])), P(language=language)).value == 1.0


def test_short_same_script_switches_are_not_judged() -> None:
    """fastText misplaces short Latin-script runs (dish names, figure code): not evidence of mixing."""
    think = CLEAN["en"] + "\n\nTom Yum Goong, Pad Krapow Moo Saap, Khao Soi Gai, Som Tam Thai."
    assert SCORE(Sample(r1(think)), P()).value == 1.0
    asy = 'label("$y = ax + c$", interp(S,R,1.4), E);\nlabel("$y = bx + d$", interp(P,S,1.2), SE);'
    assert SCORE(Sample(r1(CLEAN["en"] + "\n\n" + asy)), P()).value == 1.0


def test_maths_and_code_spans_do_not_count_as_another_language() -> None:
    think = (
        "Let $f(x) = \\sin x + \\log x$. We differentiate term by term and get the derivative below.\n\n"
        "$$f'(x) = \\cos x + \\frac{1}{x}$$\n\nSo at $x = 1$ the slope is $\\cos 1 + 1$, which is about 1.54 here."
    )
    assert SCORE(Sample(r1(think)), P()).value == 1.0


@pytest.mark.parametrize(
    ("completion", "params", "check"),
    [
        pytest.param(
            r1("We need to add the two numbers together. 首先我们拿三个苹果，然后再加四个苹果 to the basket and count them."),
            P(), "mixed_language", id="code-switch-inside-a-paragraph",
        ),
        pytest.param(
            r1(CLEAN["en"] + "\n\n" + CLEAN["fr"].replace("\n\n", " ")),
            P(), "mixed_language", id="one-long-paragraph-in-another-language",
        ),
        pytest.param(r1(CLEAN["fr"]), P(language="en"), "mixed_language", id="not-the-asked-language"),
        pytest.param(r1("word " * 700), P(max_line_repeats=None), "paragraph_length", id="wall-of-text"),
        pytest.param(r1("Compute it.\n```python\nprint(3 + 4)\n```\nIt prints 7."), P(), "code_block", id="code-in-a-maths-task"),
        pytest.param(r1("Compute it.\n```\nprint(3 + 4)"), P(), "code_block", id="unclosed-fence-counts"),
        pytest.param(r1("Compute it.\n~~~\n3 + 4\n~~~"), P(), "code_block", id="tilde-fence"),
        pytest.param("<think>" + CLEAN["en"], P(), "summary", id="reasoning-never-closed"),
        pytest.param(r1(CLEAN["en"], ""), P(), "summary", id="nothing-after-think"),
        pytest.param(r1(CLEAN["en"], "<answer></answer>"), P(), "summary", id="only-empty-tags-after-think"),
        pytest.param(CLEAN["en"], P(summary="required"), "summary", id="required-but-no-marker"),
        pytest.param(r1("Let me check.\n" + "Wait, let me recompute.\n" * 4), P(), "repeated_lines", id="looping-line"),
        pytest.param(r1("Check.\n" + "x = 3\nso y = 4\n" * 4), P(), "repeated_lines", id="looping-two-line-block"),
    ],
)
def test_each_check_catches_its_case(completion: str, params: ReadabilityScorer.Params, check: str) -> None:
    scored = SCORE(Sample(completion), params)
    assert scored.status is Status.OK
    assert scored.value == 0.0
    assert scored.detail.startswith(f"{check}: ") or f"; {check}: " in scored.detail, scored.detail


@pytest.mark.parametrize(
    ("sample", "params"),
    [
        pytest.param(Sample(r1("Write it.\n```python\ndef f(): pass\n```"), task="humaneval"), P(), id="code-task-by-label"),
        pytest.param(Sample(r1("It prints 7.\n```python\nprint(7)\n```"), prompt="What does this print?\n```python\nprint(7)\n```"),
                     P(), id="prompt-holds-code"),
        pytest.param(Sample(r1("```\nx\n```"), task="gsm8k"), P(code_blocks="allow"), id="check-off"),
        pytest.param(Sample(CLEAN["en"]), P(), id="no-think-tags-no-summary-required"),
        pytest.param(Sample("the answer follows after the reasoning", prompt="Q? <think>"), P(summary="off"), id="summary-off"),
        pytest.param(Sample(r1("int main() {\n  if (x) {\n    y();\n  }\n}\n}\n}\n}")), P(code_blocks="allow"), id="brace-lines-skipped"),
        pytest.param(Sample(r1("a\nb\na\nb\na\nb")), P(), id="three-copies-is-the-limit"),
    ],
)
def test_allowed_cases_pass(sample: Sample, params: ReadabilityScorer.Params) -> None:
    scored = SCORE(sample, params)
    assert scored.value == 1.0, scored.detail


def test_prefilled_think_needs_a_summary_after_the_close() -> None:
    """DeepSeek-R1's chat template ends the prompt with <think>: the completion only closes it."""
    prompt = "<|User|>What is 3+4?<|Assistant|><think>\n"
    assert SCORE(Sample(CLEAN["en"] + "</think>\nSeven.", prompt=prompt), P()).value == 1.0
    assert SCORE(Sample(CLEAN["en"], prompt=prompt), P()).value == 0.0


def test_fraction_mode_and_every_failure_named() -> None:
    completion = "<think>Compute.\n```\n1\n```\n" + "again\n" * 5  # code, looping lines, and no summary
    scored = SCORE(Sample(completion), P(mode="fraction"))
    assert scored.value == pytest.approx(2 / 5)
    assert [part.split(":")[0] for part in scored.detail.split("; ")] == ["code_block", "summary", "repeated_lines"]
    assert SCORE(Sample(completion), P()).value == 0.0


def test_paragraph_limit_is_in_characters_and_ignores_code_fences() -> None:
    paragraph = "x" * 100
    assert SCORE(Sample(r1(paragraph)), P(max_paragraph_chars=100)).value == 1.0
    assert SCORE(Sample(r1(paragraph + "y")), P(max_paragraph_chars=100)).value == 0.0
    long_code = "```python\n" + "a = 1\n" * 200 + "```"
    assert SCORE(Sample(r1("Code.\n" + long_code), task="code"), P(max_paragraph_chars=100, max_line_repeats=None)).value == 1.0


# -- the policy as an adversary --------------------------------------------------------------


@pytest.mark.parametrize(
    "completion",
    [
        pytest.param("", id="empty"),
        pytest.param("   \n\n  ", id="whitespace"),
        pytest.param("<think></think>", id="empty-tags"),
        pytest.param(r1("A short line.\n\n" + "\n\n".join(["Same paragraph here."] * 8)), id="repeats-as-paragraphs"),
        pytest.param(r1("Two plus two.\n<code>\nprint(4)\n</code>\n```py\nprint(4)\n```"), id="code-fence-after-html"),
        pytest.param(r1(CLEAN["en"] + "\n\n" + "我们先算一下这两个数的和，然后再检查一遍，确保答案是正确的。"), id="language-switch-in-last-paragraph"),
    ],
)
def test_attacks_do_not_pass(completion: str) -> None:
    assert SCORE(Sample(completion), P()).value == 0.0


def test_short_paragraphs_in_two_languages_are_mixing_too() -> None:
    """Each paragraph too short to judge alone (under 8 words), yet the whole is mixed.

    The English lines are prose the detector places; a line of bare arithmetic (`48 + 24 = 72`)
    is placed in no language, so it counts neither way."""
    completion = r1("So half of the clips is 24.\n\nThen we add them: 72 clips in total.\n\n我们再检查一遍这个计算，确认答案是正确的。")
    scored = SCORE(Sample(completion), P())
    assert scored.value == 0.0 and scored.detail.startswith("mixed_language: the chain of thought is"), scored.detail


def test_a_short_foreign_phrase_cannot_hide_in_a_tiny_paragraph_of_cjk() -> None:
    """CJK characters count one word each, so a few are enough to judge a short paragraph."""
    completion = r1(CLEAN["en"] + "\n\n这个答案是正确的吗")
    assert SCORE(Sample(completion), P()).value == 0.0


# -- contract ----------------------------------------------------------------------------------


def test_registered_as_a_cpu_scorer() -> None:
    assert "readability" in [s.name for s in builtin_cpu_scorers()]


def test_doctests() -> None:
    assert doctest.testmod(readability_module).failed == 0


def test_pickles_with_its_params() -> None:
    scorer, params = pickle.loads(pickle.dumps((SCORE, P(language="zh", mode="fraction"))))
    assert scorer(Sample(r1(CLEAN["zh"])), params).value == 1.0


def test_works_off_the_main_thread() -> None:
    with ThreadPoolExecutor(2) as pool:
        values = list(pool.map(lambda c: SCORE(Sample(r1(c)), P()).value, CLEAN.values()))
    assert values == [1.0] * len(CLEAN)


@pytest.mark.parametrize(
    "params",
    [{"language": "klingon"}, {"min_language_share": 1.5}, {"max_paragraph_chars": 0}, {"mode": "some"}, {"bogus": 1},
     {"same_script_min_words": 0}],
)
def test_bad_params_are_refused(params: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        P(**params)


@settings(max_examples=80, deadline=None)
@given(st.text(max_size=400), st.sampled_from(["all", "fraction"]))
def test_any_text_stays_in_range(text: str, mode: str) -> None:
    scored = SCORE(Sample(text), P(mode=mode))  # type: ignore[arg-type]
    assert scored.status is Status.OK and 0.0 <= scored.value <= 1.0


@pytest.mark.data
def test_gsm8k_gold_solutions_read_clean() -> None:
    """Human-written GSM8K solutions, as the reasoning, must nearly all pass (few false rejections)."""
    path = SHARED_DATA / "gsm8k_test.jsonl"
    if not path.exists():
        pytest.skip(f"needs {path} (the shared test data)")
    rows = [json.loads(line) for line in path.read_text().splitlines()[:300]]
    failed = [
        row["answer"] for row in rows
        if SCORE(Sample(r1(row["answer"].split("####")[0], row["answer"].split("####")[1])), P()).value != 1.0
    ]
    assert len(failed) <= 3, failed[:3]


@pytest.mark.data
def test_real_answers_and_maths_solutions_are_rarely_rejected() -> None:
    """English text by models (AlpacaEval) and by people (MATH-500 solutions, Asymptote figures
    included): few rejections. The one language-mixing rejection allowed is real: an Okinawa travel
    answer that writes place names in kanji (`Shurijo Castle Park (首里城公園)`)."""
    alpaca, math500 = SHARED_DATA / "alpaca_eval_annotations_gemma-7b-it.json", SHARED_DATA / "math500_test.jsonl"
    if not (alpaca.exists() and math500.exists()):
        pytest.skip(f"needs {alpaca} and {math500} (the shared test data)")
    outputs = [(r["instruction"], r[k]) for r in json.loads(alpaca.read_text())[:200] for k in ("output_1", "output_2")]
    params = P(scope="completion", code_blocks="allow")
    rejected = [SCORE(Sample(text, prompt=prompt), params).detail for prompt, text in outputs]
    rejected = [d for d in rejected if not d.startswith("passed")]
    solutions = [json.loads(line) for line in math500.read_text().splitlines()]
    rejected += [d for r in solutions if not (d := SCORE(Sample(r1(r["solution"], r["answer"])), P()).detail).startswith("passed")]
    assert [d for d in rejected if "mixed_language" in d] == ["mixed_language: paragraph 2 is 89% en (zh 11%)"], rejected
    assert len(rejected) <= 0.01 * (len(outputs) + len(solutions)), rejected

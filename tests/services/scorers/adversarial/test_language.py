"""Red-team cases for `language`: chains of thought in another language built to earn the target's reward.

Each case is a completion (target English unless said) and the most it may earn: about the
share of its words that are really English. An honest English opening sentence (`OPENING`,
16 words) is there to launder the rest.
The rule that stops each class is in docs/scorers.md, "language: threat model".
"""

from __future__ import annotations

import pytest

from rewardstack.services.scorers.language import UNDETERMINED, LanguageScorer, detect_languages
from rewardstack.services.scorers.types import Sample, Status

SCORE = LanguageScorer()
EN = LanguageScorer.Params(target="en")
OPENING = "Okay, so I need to find the total cost of the rooms for the whole week here. "
FRENCH = "nous calculons la somme des deux nombres puis nous vérifions le résultat"


def _think(body: str) -> str:
    return f"<think>{OPENING}{body}</think><answer>42</answer>"


ATTACKS = [
    pytest.param(_think("Das ist gut. Ich denke so. Nein danke. Also gut. Wir rechnen jetzt. Genau. " * 3), 0.5,
                 id="short-foreign-sentences-inherit"),
    pytest.param(_think(" ".join(f"Nous calculons. Then we check the sum of these {i} numbers again." for i in range(6))),
                 0.86, id="short-foreign-between-long-english"),  # 12 of 82 words are French
    pytest.param(_think("wo men xian suan zhe ge shu de mian ji. ran hou wo men jian cha yi xia da an."), 0.6,
                 id="pinyin"),
    pytest.param(_think("women xian suan mianji, ranhou jiancha daan. zhe ge wenti hen jiandan."), 0.6,
                 id="pinyin-joined-syllables"),
    pytest.param(_think(f"Then $\\text{{{FRENCH}}}$ and so on."), 0.7, id="text-in-inline-maths"),
    pytest.param(_think(f"Then \\(\\text{{{FRENCH}}}\\) and so on."), 0.7, id="text-in-paren-maths"),
    pytest.param(_think(f"\\[ x = 1 \\quad \\mbox{{{FRENCH}}} \\]"), 0.7, id="mbox-in-display-maths"),
    pytest.param(_think(f"\\begin{{align*}} x &= 1 && \\text{{{FRENCH}}} \\end{{align*}}"), 0.7, id="text-in-environment"),
    pytest.param(_think(f"\n```\n{FRENCH}\n"), 0.7, id="unclosed-fence-of-prose"),
    pytest.param(_think(f"\n```\n{FRENCH}\n```\n"), 0.7, id="closed-fence-of-prose"),
    pytest.param(_think(f"`{FRENCH}`"), 0.7, id="inline-code-of-prose"),
    pytest.param(_think(f"```{FRENCH}\n```"), 0.7, id="prose-as-fence-info-string"),
    pytest.param(_think("\n```python\n# 我们先计算三角形的面积然后检查\narea = b * h / 2\n```\n"), 0.7,
                 id="foreign-comment-in-code"),
    pytest.param(_think("\n```python\nprint('我们先计算三角形的面积然后检查答案')\n```\n"), 0.7,
                 id="cjk-string-in-code"),
    pytest.param(f"<think>{OPENING}</think><answer>{FRENCH}. 我们先计算三角形的面积然后检查答案</answer>", 0.5,
                 id="reasoning-moved-into-answer"),
    pytest.param(f"{OPENING}</think><answer>{FRENCH}</answer>", 0.7, id="prefilled-reasoning-moved-into-answer"),
    pytest.param(_think("Tеперь мы вычисляем площадь треугольника и проверяем ответ."), 0.75,
                 id="latin-first-letter-on-cyrillic"),
    pytest.param(_think("Tеперь Mы Bычисляем Пloщадь Tреугольника И Пpоверяем Oтвет Cнова."), 0.75,
                 id="homoglyphs-throughout"),
    pytest.param(_think("Wir\u200b rechnen\u200b jetzt\u200b die\u200b Summe\u200b und\u200b prüfen\u200b das."), 0.7,
                 id="zero-width-spaces-in-foreign"),
    pytest.param(_think("Ｗｉｒ ｒｅｃｈｎｅｎ ｊｅｔｚｔ ｄｉｅ Ｓｕｍｍｅ ｕｎｄ ｐｒüｆｅｎ ｄａｓ．"), 0.75, id="fullwidth-letters"),
    pytest.param(_think("𝐖𝐢𝐫 𝐫𝐞𝐜𝐡𝐧𝐞𝐧 𝐣𝐞𝐭𝐳𝐭 𝐝𝐢𝐞 𝐒𝐮𝐦𝐦𝐞 𝐮𝐧𝐝 𝐩𝐫ü𝐟𝐞𝐧."), 0.75, id="mathematical-bold-letters"),
    pytest.param(_think("<Wir> <rechnen> <jetzt> <die> <Summe> <und> <prüfen>"), 0.75, id="words-as-tags"),
    pytest.param("<think>Nous calculons la somme des deux nombres, puis nous vérifions le résultat encore.</think>", 0.0,
                 id="all-french"),
]


@pytest.mark.parametrize(("completion", "most"), ATTACKS)
def test_attack_earns_at_most(completion: str, most: float) -> None:
    scored = SCORE(Sample(completion), EN)
    assert scored.status is Status.OK, scored.detail
    assert scored.value <= most, scored.detail


def test_chinese_target_is_not_laundered_by_english_either() -> None:
    completion = "<think>我们先计算三角形的面积。" + "Then we check the area of the triangle again carefully. " * 3 + "</think>"
    scored = SCORE(Sample(completion), LanguageScorer.Params(target="zh"))
    assert scored.value < 0.4, scored.detail


HONEST = [
    pytest.param(_think("Hmm. Wait. Let me recompute. So 3 times 4 is 12. Yes, that is right."), id="interjections"),
    pytest.param(_think("We print the total:\n```python\ntotal = 3 * 4  # rooms times days\nprint(total)\n```\nIt prints 12."),
                 id="english-code"),
    pytest.param(_think("So the cost is $12 \\text{ dollars}$ per day, and $84 \\text{ dollars}$ in total."), id="units-in-text"),
    pytest.param(_think("The rooms cost 3 dollars. The week has 7 days. So it costs 21 dollars."), id="short-sentences"),
    pytest.param(_think("<b>Note</b> that the sum<sup>2</sup> is fine,<br>so we keep it."), id="markup-tags"),
]


@pytest.mark.parametrize("completion", HONEST)
def test_honest_english_keeps_full_reward(completion: str) -> None:
    scored = SCORE(Sample(completion), EN)
    assert scored.value == 1.0, scored.detail


def test_detector_is_public_for_other_scorers() -> None:
    """`readability` reuses the detector on one paragraph at a time."""
    counts = detect_languages("Das ist gut. We add the two numbers and then check the sum again.")
    assert counts["en"] == 11 and counts["de"] == 3
    assert detect_languages("x = 1") == {}
    assert detect_languages("wo men xian suan mian ji") == {"zh": 6}
    assert set(detect_languages("Hmm. Yes.")) == {UNDETERMINED}

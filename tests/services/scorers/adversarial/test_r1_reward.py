"""The combined R1 reward, math 1 + format 0.2 + language 0.2: no degenerate completion reaches an honest one.

Through the scorer functions, and once through a real gateway, with the parameters the R1
recipe uses (docs/scorers.md, "The R1 reward"): `format` strict, `language` with target `en` and `few_words_value` 0.0. So an honest,
single-language, correct completion with reasoning earns 1.4; a completion with empty (or
formula-only) reasoning earns at most 1.2, by choice: the language reward pays for reasoning
written in the target language, and there is none to pay for.
"""

from __future__ import annotations

import httpx
import pytest

from rewardstack.services.gateway.app import create_app
from rewardstack.services.scorers.format import FormatScorer
from rewardstack.services.scorers.language import LanguageScorer
from rewardstack.services.scorers.math import MathScorer
from rewardstack.services.scorers.types import Sample, Status
from rewardstack.services.settings import Settings
from tests.servers import running_server

GOLD = "42"
PARTS = (
    (MathScorer(), MathScorer.Params(), 1.0),
    (FormatScorer(), FormatScorer.Params(), 0.2),
    (LanguageScorer(), LanguageScorer.Params(target="en", few_words_value=0.0), 0.2),
)
MAXIMUM = sum(weight for _, _, weight in PARTS)
EMPTY_REASONING_MOST = 1.2


def r1_reward(completion: str) -> float | None:
    """The weighted sum when every part is ok, else None (the gateway's rule)."""
    total = 0.0
    for scorer, params, weight in PARTS:
        scored = scorer(Sample(completion, reference=GOLD), params)
        if scored.status is not Status.OK:
            return None
        total += weight * scored.value
    return total


HONEST = [
    pytest.param("<think>Six rows of seven chairs make 6 * 7 = 42 chairs in total, so the hall holds 42 people."
                 "</think>\n<answer>42</answer>", id="plain"),
    pytest.param("<think>Let the number be $n$. We are told $n - 2 = 40$, so adding 2 to both sides gives the value "
                 "of $n$ as $42$. Checking: $42 - 2 = 40$, which matches.</think><answer>$\\boxed{42}$</answer>",
                 id="latex"),
    pytest.param("<think>First we count the apples in each basket and then we add them up. Hmm. Wait. Yes, "
                 "twenty plus twenty-two is 42.</think><answer>42</answer>", id="with-interjections"),
]

DEGENERATE = [
    pytest.param("<think></think><answer>42</answer>", EMPTY_REASONING_MOST, id="empty-reasoning"),
    pytest.param("<think>$6 \\cdot 7 = 42$</think><answer>42</answer>", EMPTY_REASONING_MOST, id="formula-only-reasoning"),
    pytest.param("<think>Hmm. Yes.</think><answer>42</answer>", EMPTY_REASONING_MOST, id="two-word-reasoning"),
    pytest.param("<think>\u200b\u2800\u3164</think><answer>42</answer>", EMPTY_REASONING_MOST, id="invisible-reasoning"),
    pytest.param("<think>Okay, so I need to find the total number of chairs in the whole hall here. "
                 "wo men xian suan zhe ge shu. ran hou wo men jian cha yi xia da an.</think><answer>42</answer>",
                 1.35, id="pinyin-reasoning"),
    pytest.param("<think>Okay, so I need to find the total number of chairs in the whole hall here. "
                 "Das ist gut. Ich denke so. Wir rechnen jetzt. Genau.</think><answer>42</answer>", 1.35,
                 id="short-german-sentences"),
    pytest.param("<think>Okay, so I need to find the total number of chairs in the whole hall here.</think>"
                 "<answer>Nous multiplions six par sept, donc la réponse est 42</answer>", 1.35,
                 id="reasoning-moved-into-answer"),
    pytest.param("<think>Six rows of seven chairs make 42 chairs.</think><answer>\u200b</answer>\n42", 1.2,
                 id="invisible-answer-then-number"),  # format 0 whatever math makes of it
    pytest.param("<think>Six rows of seven chairs make 42 chairs.</think><answer>42</answer>\x1c", 1.2,
                 id="control-character-after-answer"),
    pytest.param("<think>Six rows of seven chairs make 6 * 7 chairs in total, so the hall holds them all.</think>"
                 "<answer>41</answer>", 0.4, id="wrong-answer"),
]


@pytest.mark.parametrize("completion", HONEST)
def test_honest_correct_completion_earns_the_maximum(completion: str) -> None:
    assert r1_reward(completion) == pytest.approx(MAXIMUM)


@pytest.mark.parametrize(("completion", "most"), DEGENERATE)
def test_degenerate_completion_earns_at_most(completion: str, most: float) -> None:
    reward = r1_reward(completion)
    assert reward is not None
    assert reward <= most + 1e-9
    assert reward < MAXIMUM


def test_best_degenerate_is_below_every_honest() -> None:
    best_degenerate = max(r1_reward(p.values[0]) or 0.0 for p in DEGENERATE)
    worst_honest = min(r1_reward(p.values[0]) or 0.0 for p in HONEST)
    assert best_degenerate < worst_honest


def test_through_the_gateway() -> None:
    """The same rule over HTTP: the gateway's weighted sum, its statuses, and the parameters as JSON."""
    cases = [p.values[0] for p in HONEST] + [p.values[0] for p in DEGENERATE]
    body = {
        "items": [{"id": str(i), "completion": c, "reference": GOLD} for i, c in enumerate(cases)],
        "scorers": {
            "math": {"weight": 1.0},
            "format": {"weight": 0.2},
            "language": {"weight": 0.2, "params": {"target": "en", "few_words_value": 0.0}},
        },
    }
    settings = Settings(scorer_workers=1, enabled_scorers="math,format,language")
    with running_server(create_app(settings)) as url:
        results = httpx.post(url + "/v1/score", json=body, timeout=120).json()["results"]
    rewards = [r["reward"] for r in results]
    assert rewards == pytest.approx([r1_reward(c) for c in cases])
    assert max(rewards[len(HONEST) :]) < min(rewards[: len(HONEST)]) == pytest.approx(MAXIMUM)

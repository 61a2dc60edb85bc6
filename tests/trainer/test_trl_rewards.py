"""The TRL adapter against a real gateway: one request per batch, names, None for what is not ok, pickling."""

from __future__ import annotations

import asyncio
import multiprocessing
import pickle
from typing import Any

import pytest
from fastapi import FastAPI

from tests.servers import free_port
from tests.trainer.conftest import score_requests
from rewardstack import AsyncRewardClient, RetryPolicy, ServiceUnreachable
from rewardstack.trl import REFERENCE_COLUMNS, MissingScorerInput, build_items, completion_text, reward_funcs, reward_weights

SCORERS = {"number": 1.0, "chars": {"weight": 0.5}}


async def call_like_trl(funcs: list[Any], prompts: list[Any], completions: list[Any], **columns: Any) -> list[list[float | None]]:
    """What GRPOTrainer does with async reward functions: await them together with the same kwargs."""
    logged: list[tuple[str, float]] = []
    kwargs = {"completion_ids": [[0]] * len(completions), "trainer_state": None, "log_metric": lambda n, v: logged.append((n, v))}
    return await asyncio.gather(*(f(prompts=prompts, completions=completions, **kwargs, **columns) for f in funcs))


def test_one_request_per_batch_shared_by_every_scorer(gateway: tuple[FastAPI, str]) -> None:
    app, url = gateway
    funcs = reward_funcs(url, SCORERS)
    assert [f.__name__ for f in funcs] == ["number", "chars"]
    assert reward_weights(SCORERS) == [1.0, 0.5]
    before = score_requests(app)
    number, chars = asyncio.run(call_like_trl(funcs, ["p"] * 4, ["1", "22", "none", "4"]))
    assert score_requests(app) - before == 1
    assert number == [1.0, 22.0, None, 4.0]  # `none` is unscorable: None, which TRL masks; never 0
    assert chars == [1.0, 2.0, 4.0, 1.0]


def test_the_same_batch_in_a_later_step_is_scored_again(gateway: tuple[FastAPI, str]) -> None:
    app, url = gateway
    funcs = reward_funcs(url, SCORERS)
    before = score_requests(app)

    async def two_steps() -> None:
        await call_like_trl(funcs, ["p"], ["5"])
        await call_like_trl(funcs, ["p"], ["5"])

    asyncio.run(two_steps())
    assert score_requests(app) - before == 2


def test_a_timed_out_item_reaches_trl_as_none(gateway_url: str) -> None:
    (number,) = asyncio.run(call_like_trl(reward_funcs(gateway_url, ["number"]), ["p", "p"], ["sleep:5", "3"]))
    assert number == [None, 3.0]


def test_chat_completions_and_dataset_columns(gateway_url: str) -> None:
    prompts = [[{"role": "user", "content": "say 12"}]] * 2
    completions = [[{"role": "assistant", "content": "12"}], [{"role": "assistant", "content": [{"type": "text", "text": "7"}]}]]
    (number,) = asyncio.run(call_like_trl(reward_funcs(gateway_url, ["number"]), prompts, completions, answer=["12", "12"]))
    assert number == [12.0, 7.0]


def test_an_outage_raises_instead_of_scoring_zero() -> None:
    client = AsyncRewardClient(f"http://127.0.0.1:{free_port()}", retry=RetryPolicy(max_attempts=2, backoff_base_s=0.01, backoff_max_s=0.01))
    with pytest.raises(ServiceUnreachable):
        asyncio.run(call_like_trl(reward_funcs(client, ["number"]), ["p"], ["1"]))


def _score_in_child(funcs: list[Any], out: Any) -> None:
    out.put(asyncio.run(call_like_trl(funcs, ["p", "p"], ["3", "41"])))


def test_reward_funcs_pickle_and_work_in_a_spawned_process(gateway_url: str) -> None:
    funcs = reward_funcs(gateway_url, SCORERS)
    asyncio.run(call_like_trl(funcs, ["p"], ["1"]))  # used once here: the copy must not carry the pool
    copies = pickle.loads(pickle.dumps(funcs))
    assert copies[0].shared is copies[1].shared  # still one shared batch cache after pickling
    ctx = multiprocessing.get_context("spawn")  # as TRL's async GRPO runs its rollout worker
    out = ctx.Queue()
    child = ctx.Process(target=_score_in_child, args=(funcs, out))
    child.start()
    try:
        assert out.get(timeout=120) == [[3.0, 41.0], [1.0, 2.0]]
    finally:
        child.join(timeout=30)
    assert child.exitcode == 0


@pytest.mark.parametrize(
    ("completion", "text"),
    [
        pytest.param("plain", "plain", id="string"),
        pytest.param([{"role": "assistant", "content": "a"}], "a", id="one-message"),
        pytest.param([{"role": "assistant", "content": [{"type": "text", "text": "x"}, {"type": "image"}]}], "x", id="parts"),
        pytest.param([{"role": "assistant", "content": "a"}, {"role": "tool", "content": "t"}, {"role": "assistant", "content": "b"}], "a\n\nb", id="tool-turns-skipped"),
    ],
)
def test_completion_text(completion: Any, text: str) -> None:
    assert completion_text(completion) == text


@pytest.mark.parametrize(
    ("columns", "reference"),
    [
        pytest.param({"answer": ["42"], "solution": ["long"]}, "42", id="answer-before-solution"),
        pytest.param({"solution": ["s"]}, "s", id="solution"),
        pytest.param({"tests": [{"asserts": ["assert f() == 1"]}]}, {"asserts": ["assert f() == 1"]}, id="tests"),
        pytest.param({"reference": ["r"], "answer": ["a"]}, "r", id="explicit-reference-first"),
        pytest.param({}, None, id="none"),
    ],
)
def test_dataset_columns_map_to_reference(columns: dict, reference: Any) -> None:
    (item,) = build_items(["q"], ["c"], columns, ("reference", "answer", "solution", "tests"))
    assert item.reference == reference


def test_completions_of_one_prompt_share_a_group() -> None:
    items = build_items(["a", "a", "b"], ["1", "2", "3"], {"task": ["t", "t", "t"]}, ("answer",))
    assert items[0].group_id == items[1].group_id != items[2].group_id
    assert [i.task for i in items] == ["t", "t", "t"]


@pytest.mark.parametrize(
    ("scorers", "columns", "named"),
    [
        pytest.param(["math"], {"ground_truth": ["4"]}, ["'math'", "ground_truth", "reference_columns"], id="math-gold-elsewhere"),
        pytest.param(["code"], {"unit_tests": ["assert f() == 1"]}, ["'code'", "unit_tests", "tests"], id="code-tests-elsewhere"),
        pytest.param({"length": {"params": {"mode": "cosine"}}}, {"answer": ["4"]}, ["'length'", "correct"], id="cosine-without-correct"),
    ],
)
def test_a_missing_scorer_input_raises_on_the_first_call(scorers: Any, columns: dict, named: list[str]) -> None:
    funcs = reward_funcs(f"http://127.0.0.1:{free_port()}", scorers)  # never reached: the check comes first
    with pytest.raises(MissingScorerInput) as caught:
        asyncio.run(call_like_trl(funcs, ["p"], ["4"], **columns))
    for part in named:
        assert part in str(caught.value)
    assert "completion_ids" not in str(caught.value) and "trainer_state" not in str(caught.value)  # TRL's own kwargs


def test_token_ids_and_correctness_become_item_metadata() -> None:
    items = build_items(["p", "p"], ["ab", "c"], {"completion_ids": [[1, 2, 3], [4]], "correct": [True, False]}, REFERENCE_COLUMNS)
    assert [i.metadata for i in items] == [{"completion_tokens": 3, "correct": True}, {"completion_tokens": 1, "correct": False}]

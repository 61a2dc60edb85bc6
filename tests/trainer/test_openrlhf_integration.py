"""OpenRLHF's own reward client against a live gateway: `/get_reward` and the reward-function file.

OpenRLHF 0.11's `SingleTurnAgentExecutor.execute` runs as in training: it tokenizes the templated
prompt, takes generated token ids from the engine, decodes prompt + response with the special
tokens kept and calls the reward endpoint (HTTP, or our `rewardstack.openrlhf` file). Only vLLM is
replaced, by `ScriptedEngine`, which returns the tokens of a fixed response plus the stop token.
The payloads of older versions (a batch, left- and right-padded, or `query` only) are decoded by
the same tokenizers and posted as their `remote_rm_fn` posts them. Every reward must equal what
`/v1/score` gives for the response text alone.
"""

from __future__ import annotations

import asyncio
import importlib.util
import math
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

import rewardstack.openrlhf
from rewardstack import RewardClient

agent = pytest.importorskip("openrlhf.utils.agent", reason="OpenRLHF is not installed: `make install` adds it (--no-deps)")
from tests.chat_templates import FAMILIES, build_tokenizer  # noqa: E402

SCORERS = "math:1,format:0.2"
FEW_SHOT = [
    # the few-shot answer equals the gold: a prompt left in the scored text would earn `math` 1.0
    {"role": "user", "content": "What is 20+21? Reply with \\boxed{}."},
    {"role": "assistant", "content": "20+21 = \\boxed{41}"},
    {"role": "user", "content": "What is 6*7 - 1?"},
]
RESPONSES = {
    "honest": "<think>\n6*7 = 42, minus 1 is 41.\n</think>\n<answer>41</answer>",
    "wrong": "<think>\nGuess.\n</think>\n<answer>40</answer>",
    "no-answer": "I don't know.",  # the case: the prompt's \boxed{42} must not be graded
}
GOLD = "41"


def response_for(family: str, case: str) -> str:
    """DeepSeek-R1's template pre-fills `<think>\n`: its model's response starts inside the thought."""
    return RESPONSES[case].removeprefix("<think>\n") if family == "deepseek_r1" else RESPONSES[case]


@dataclass
class SamplingParams:
    """The fields of vLLM's SamplingParams that the executor reads and writes."""

    max_tokens: int | None = 256
    logprobs: int | None = None


@dataclass
class _Completion:
    token_ids: list[int]
    text: str
    finish_reason: str = "stop"
    logprobs: Any = None


@dataclass
class _RequestOutput:
    outputs: list[_Completion] = field(default_factory=list)


class ScriptedEngine:
    """Stands in for vLLM (GPU only): generates the token ids of a fixed response, then the stop token."""

    def __init__(self, tokenizer: Any, response: str) -> None:
        self.ids = tokenizer(response, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
        self.text = response

    async def generate(self, prompt_token_ids: list[int], sampling_params: Any, multi_modal_data: Any = None) -> _RequestOutput:
        return _RequestOutput([_Completion(list(self.ids), self.text)])


def expected_rewards(url: str, prompt: str, response: str) -> tuple[float | None, dict[str, float | None]]:
    with RewardClient(url) as client:
        result = client.score([{"prompt": prompt, "completion": response, "reference": GOLD}], SCORERS)
    item = result.results[0]
    return item.reward, {name: c.value for name, c in item.components.items()}


def run_executor(remote: str, family: str, response: str) -> tuple[dict[str, Any], str]:
    tokenizer = build_tokenizer(FAMILIES[family])
    prompt = tokenizer.apply_chat_template(FEW_SHOT, tokenize=False, add_generation_prompt=True)
    executor = agent.SingleTurnAgentExecutor(remote_rm_url=remote)
    output = asyncio.run(executor.execute(prompt, GOLD, SamplingParams(), 4096, tokenizer, ScriptedEngine(tokenizer, response)))
    return output, prompt


@pytest.mark.parametrize("family", sorted(FAMILIES))
@pytest.mark.parametrize("case", sorted(RESPONSES))
def test_openrlhf_0_11_http_rewards_equal_v1_score(rules_gateway_url: str, family: str, case: str) -> None:
    response = response_for(family, case)
    output, prompt = run_executor(f"{rules_gateway_url}/get_reward?scorers={SCORERS}", family, response)
    reward, components = expected_rewards(rules_gateway_url, prompt, response)
    assert output["reward"] == [reward] and output["scores"] == [reward]
    assert output["extra_logs"] == {name: [value] for name, value in components.items()}
    if case == "honest":
        assert reward == pytest.approx(1.2)  # math and format both earned: nothing of the template left in the text
    if case == "no-answer":
        assert components["math"] == 0.0  # the few-shot \boxed{41} in the prompt is not graded


@pytest.mark.parametrize("family", ["qwen2", "llama3"])
def test_openrlhf_reward_function_file_gives_the_same_rewards(
    rules_gateway_url: str, family: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REWARDSTACK_URL", rules_gateway_url)
    monkeypatch.setenv("REWARDSTACK_SCORERS", SCORERS)
    path = Path(rewardstack.openrlhf.__file__)
    for case in RESPONSES:
        response = response_for(family, case)
        output, prompt = run_executor(str(path), family, response)
        reward, components = expected_rewards(rules_gateway_url, prompt, response)
        assert output["reward"].tolist() == [pytest.approx(reward)]
        assert {k: v.tolist() for k, v in output["extra_logs"].items()} == {k: [pytest.approx(v)] for k, v in components.items()}


def test_the_reward_function_file_refuses_an_unlocatable_response(rules_gateway_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REWARDSTACK_URL", rules_gateway_url)
    monkeypatch.setenv("REWARDSTACK_SCORERS", SCORERS)
    with pytest.raises(rewardstack.ItemNotScored, match="prompt was not found"):
        rewardstack.openrlhf.reward_func(["Example \\boxed{41}. I don't know."], ["Another prompt"], [GOLD])
    monkeypatch.setenv("REWARDSTACK_FALLBACK", "-1")
    out = rewardstack.openrlhf.reward_func(["Example \\boxed{41}. I don't know.", "Q: <answer>41</answer></s>"], ["Another prompt", "Q: "], [GOLD, GOLD])
    assert out["rewards"].tolist()[0] == -1.0


def batched_payload(family: str, *, with_prompts: bool) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """What OpenRLHF 0.5-0.9.0 post: a batch decoded from padded sequences, special tokens kept."""
    tokenizer = build_tokenizer(FAMILIES[family])
    prompt = tokenizer.apply_chat_template(FEW_SHOT, tokenize=False, add_generation_prompt=True)
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    responses = [response_for(family, case) for case in RESPONSES]
    rows = [tokenizer(r, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id] for r in responses]
    width = max(map(len, rows))
    queries = [
        tokenizer.decode([tokenizer.pad_token_id] * 2 + prompt_ids + row + [tokenizer.pad_token_id] * (width - len(row)), skip_special_tokens=False)
        for row in rows
    ]
    body: dict[str, Any] = {"query": queries}
    if with_prompts:
        body |= {"prompts": [prompt] * len(rows), "labels": [GOLD] * len(rows)}
    return body, list(zip([prompt] * len(rows), responses, strict=True))


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_older_batched_padded_payloads_score_the_response_only(rules_gateway_url: str, family: str) -> None:
    body, samples = batched_payload(family, with_prompts=True)
    data = httpx.post(f"{rules_gateway_url}/get_reward?scorers={SCORERS}", json=body, timeout=120).json()
    expected = [expected_rewards(rules_gateway_url, p, r)[0] for p, r in samples]
    assert data["rewards"] == expected


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_query_only_payloads_of_openrlhf_before_0_6(rules_gateway_url: str, family: str) -> None:
    body, samples = batched_payload(family, with_prompts=False)
    data = httpx.post(f"{rules_gateway_url}/get_reward?scorers=format", json=body, timeout=120).json()
    # without the prompt, R1's pre-filled `<think>\n` reads as the response's own: format sees it either way
    expected = []
    for prompt, response in samples:
        with RewardClient(rules_gateway_url) as client:
            expected.append(client.score([{"prompt": prompt, "completion": response}], "format").results[0].reward)
    assert data["rewards"] == expected


SHIPPED_CHECK = """
import pickle, sys
reward_func = pickle.loads(sys.stdin.buffer.read())
out = reward_func([sys.argv[1] + sys.argv[2] + "<|im_end|>"], [sys.argv[1]], ["41"])
print(out["rewards"].tolist()[0])
"""


def test_the_reward_function_file_survives_rays_cloudpickle(rules_gateway_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """OpenRLHF 0.6-0.9.0 load the file as module `reward_func` and ship the function to Ray workers by value."""
    cloudpickle = pytest.importorskip("ray.cloudpickle")
    spec = importlib.util.spec_from_file_location("reward_func", rewardstack.openrlhf.__file__)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    payload = cloudpickle.dumps(module.reward_func)
    env = {**os.environ, "REWARDSTACK_URL": rules_gateway_url, "REWARDSTACK_SCORERS": SCORERS}
    prompt = "<|im_start|>user\nWhat is 6*7 - 1?<|im_end|>\n<|im_start|>assistant\n"
    done = subprocess.run([sys.executable, "-c", SHIPPED_CHECK, prompt, RESPONSES["honest"]], input=payload, env=env,
                          capture_output=True, timeout=120)  # a fresh process: no module named reward_func there
    assert done.returncode == 0, done.stderr.decode()
    assert float(done.stdout) == pytest.approx(expected_rewards(rules_gateway_url, prompt, RESPONSES["honest"])[0])


def test_several_urls_as_openrlhf_0_11_shards_one_sample_over_them(rules_gateway_url: str) -> None:
    """`--reward.remote_url a,b`: each sample goes to the first URL, the second gets an empty batch."""
    tokenizer = build_tokenizer(FAMILIES["qwen2"])
    prompt = tokenizer.apply_chat_template(FEW_SHOT, tokenize=False, add_generation_prompt=True)
    url = f"{rules_gateway_url}/get_reward?scorers={SCORERS}"
    executor = agent.SingleTurnAgentExecutor(remote_rm_url=[url, url])
    engine = ScriptedEngine(tokenizer, RESPONSES["honest"])
    output = asyncio.run(executor.execute(prompt, GOLD, SamplingParams(), 4096, tokenizer, engine))
    assert output["reward"] == [expected_rewards(rules_gateway_url, prompt, RESPONSES["honest"])[0]]


def test_a_weight_zero_component_that_is_not_ok_does_not_stop_the_reward(rules_gateway_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A broken gold makes `math` unscorable; at weight 0 it is logged as NaN and the reward stands."""
    monkeypatch.setenv("REWARDSTACK_URL", rules_gateway_url)
    monkeypatch.setenv("REWARDSTACK_SCORERS", "format:1,math:0")
    response = "<think>\n6*7 - 1 = 41\n</think>\n<answer>41</answer>"
    out = rewardstack.openrlhf.reward_func(["Q: " + response + "</s>"], ["Q: "], ["((("])
    reward, components = expected_rewards_with(rules_gateway_url, "Q: ", response, "(((", {"format": 1.0, "math": 0.0})
    assert components["math"] is None and reward is not None
    assert out["rewards"].tolist() == [pytest.approx(reward)]
    assert math.isnan(out["extra_logs"]["math"].tolist()[0])


def expected_rewards_with(url: str, prompt: str, response: str, gold: str, scorers: dict[str, float]) -> tuple[float | None, dict[str, float | None]]:
    with RewardClient(url) as client:
        item = client.score([{"prompt": prompt, "completion": response, "reference": gold}], scorers).results[0]
    return item.reward, {name: c.value for name, c in item.components.items()}

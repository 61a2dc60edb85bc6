"""verl's own reward managers and Hydra config against a live gateway.

The config is composed by Hydra from verl's `ppo_trainer.yaml` with the overrides our docs give,
the reward function is loaded by verl's `load_reward_manager`/`get_custom_reward_fn`, and the
managers score a `DataProto` laid out as verl's trainer lays it out (left-padded prompts,
right-padded responses, one attention mask). Every reward must equal `/v1/score`'s.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import os
import subprocess
import sys

import numpy as np
import pytest
from fastapi import FastAPI

import rewardstack.verl
from rewardstack import ItemNotScored, RewardClient
from tests.trainer.conftest import score_requests

torch = pytest.importorskip("torch")
verl = pytest.importorskip("verl", reason="verl is not installed: `make install` adds it (--no-deps)")
hydra = pytest.importorskip("hydra", reason="hydra-core is not installed: pip install -e '.[integrations]'")
from tests.chat_templates import FAMILIES, build_tokenizer  # noqa: E402
from hydra.errors import ConfigCompositionException  # noqa: E402
from verl import DataProto  # noqa: E402
from verl.trainer.ppo.reward import get_custom_reward_fn, load_reward_manager  # noqa: E402
from verl.workers.reward_manager import BatchRewardManager, NaiveRewardManager  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
VERL_CONFIG = Path(verl.__file__).parent / "trainer" / "config"
SCORERS = {"math": 1.0, "format": 0.2}
SAMPLES = [  # (response, gold)
    ("<think>\n6*7 = 42\n</think>\n<answer>42</answer>", "42"),
    ("<think>\nguess\n</think>\n<answer>41</answer>", "42"),
    ("The answer is \\boxed{7}.", "7"),
    ("I don't know.", "3"),
]


def documented_overrides(url: str) -> list[str]:
    """The overrides docs/trainer.md gives for verl >= 0.8, with the path and URL filled in."""
    return [
        "reward.custom_reward_function.path=pkg://rewardstack.verl",
        "reward.custom_reward_function.name=compute_score",
        f"+reward.custom_reward_function.reward_kwargs.url={url}",
        "+reward.custom_reward_function.reward_kwargs.scorers={math:1,format:0.2}",
    ]


def compose(overrides: list[str]) -> Any:
    with hydra.initialize_config_dir(config_dir=str(VERL_CONFIG), version_base=None):
        return hydra.compose(config_name="ppo_trainer", overrides=overrides)


def data_proto(tokenizer: Any, samples: list[tuple[str, str]]) -> DataProto:
    """A batch as verl's trainer builds it after rollout."""
    prompt_rows = [tokenizer(f"Question {i}: compute it.", add_special_tokens=False)["input_ids"] for i in range(len(samples))]
    response_rows = [tokenizer(r, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id] for r, _ in samples]
    p_len, r_len = max(map(len, prompt_rows)), max(map(len, response_rows)) + 3
    pad = tokenizer.pad_token_id
    prompts = torch.tensor([[pad] * (p_len - len(p)) + p for p in prompt_rows])
    responses = torch.tensor([r + [pad] * (r_len - len(r)) for r in response_rows])
    mask = torch.tensor([[0] * (p_len - len(p)) + [1] * len(p) + [1] * len(r) + [0] * (r_len - len(r)) for p, r in zip(prompt_rows, response_rows, strict=True)])
    return DataProto.from_dict(
        tensors={"prompts": prompts, "responses": responses, "input_ids": torch.cat([prompts, responses], 1), "attention_mask": mask},
        non_tensors={
            "data_source": np.array(["gsm8k"] * len(samples), dtype=object),
            "reward_model": np.array([{"ground_truth": gold, "style": "rule"} for _, gold in samples], dtype=object),
            "extra_info": np.array([{"index": np.int64(i), "split": "train"} for i in range(len(samples))], dtype=object),
        },
    )


def expected(url: str, samples: list[tuple[str, str]]) -> list[float | None]:
    with RewardClient(url) as client:
        result = client.score([{"completion": r, "reference": g, "task": "gsm8k"} for r, g in samples], SCORERS)
    return [r.reward for r in result.results]


def last_valid(reward_tensor: Any, data: DataProto) -> list[float]:
    p_len = data.batch["prompts"].shape[-1]
    lengths = data.batch["attention_mask"][:, p_len:].sum(-1)
    return [float(reward_tensor[i, int(n) - 1]) for i, n in enumerate(lengths)]


def test_the_documented_hydra_overrides_reach_our_function_intact(rules_gateway_url: str) -> None:
    overrides = documented_overrides(rules_gateway_url)
    docs = (ROOT / "docs" / "trainer.md").read_text()
    for override in overrides:
        assert override.replace(rules_gateway_url, "http://127.0.0.1:8000") in docs, f"docs/trainer.md should show {override}"
    config = compose(overrides)
    fn = get_custom_reward_fn(config)
    assert fn is not None
    kwargs = fn.args[1]  # verl's partial(_call_with_kwargs, raw_fn, reward_kwargs)
    assert kwargs["url"] == rules_gateway_url and dict(kwargs["scorers"]) == {"math": 1, "format": 0.2}
    result = fn(data_source="gsm8k", solution_str=SAMPLES[0][0], ground_truth="42", extra_info={"index": 0})
    assert result["score"] == pytest.approx(expected(rules_gateway_url, SAMPLES[:1])[0]) == pytest.approx(1.2)


def test_the_quoted_string_form_works_and_the_unquoted_one_is_refused_by_hydra(rules_gateway_url: str) -> None:
    base = documented_overrides(rules_gateway_url)[:3]
    config = compose([*base, '+reward.custom_reward_function.reward_kwargs.scorers="math:1,format:0.2"'])
    assert config.reward.custom_reward_function.reward_kwargs.scorers == "math:1,format:0.2"
    with pytest.raises(ConfigCompositionException, match="Ambiguous value"):
        compose([*base, "+reward.custom_reward_function.reward_kwargs.scorers=math:1,format:0.2"])


def test_verls_reward_loop_naive_manager_loaded_from_the_config(rules_gateway_url: str) -> None:
    """verl >= 0.8: `load_reward_manager` builds the async per-sample manager around our compute_score."""
    tokenizer = build_tokenizer(FAMILIES["qwen2"])
    manager = load_reward_manager(compose(documented_overrides(rules_gateway_url)), tokenizer)
    data = data_proto(tokenizer, SAMPLES)

    async def run_all() -> list[dict[str, Any]]:
        return [await manager.run_single(data[i : i + 1]) for i in range(len(data))]

    outs = manager.loop.run_until_complete(run_all())
    assert [o["reward_score"] for o in outs] == pytest.approx(expected(rules_gateway_url, SAMPLES))
    assert set(outs[0]["reward_extra_info"]) == {"score", "math", "format"}


def test_verls_legacy_naive_manager(rules_gateway_url: str) -> None:
    tokenizer = build_tokenizer(FAMILIES["llama3"])
    fn = get_custom_reward_fn(compose(documented_overrides(rules_gateway_url)))
    manager = NaiveRewardManager(tokenizer, num_examine=0, compute_score=fn)
    data = data_proto(tokenizer, SAMPLES)
    out = manager(data, return_dict=True)
    assert last_valid(out["reward_tensor"], data) == pytest.approx(expected(rules_gateway_url, SAMPLES))
    assert out["reward_extra_info"]["math"] == [1.0, 0.0, 1.0, 0.0]


def test_verls_batch_manager_sends_one_request_per_batch(rules_gateway: tuple[FastAPI, str]) -> None:
    app, url = rules_gateway
    tokenizer = build_tokenizer(FAMILIES["qwen2"])
    manager = BatchRewardManager(tokenizer, 0, rewardstack.verl.compute_score_batch, url=url, scorers="math:1,format:0.2")
    data = data_proto(tokenizer, SAMPLES * 4)
    before = score_requests(app)
    out = manager(data, return_dict=True)
    assert score_requests(app) - before == 1
    assert last_valid(out["reward_tensor"], data) == pytest.approx(expected(url, SAMPLES * 4))


def test_an_unscorable_item_stops_verl_unless_a_fallback_is_given(rules_gateway_url: str) -> None:
    tokenizer = build_tokenizer(FAMILIES["qwen2"])
    data = data_proto(tokenizer, [("<answer>42</answer>", "not a number at all ((")])
    manager = BatchRewardManager(tokenizer, 0, rewardstack.verl.compute_score_batch, url=rules_gateway_url, scorers="math")
    with pytest.raises(ItemNotScored):
        manager(data)
    fallback = BatchRewardManager(tokenizer, 0, rewardstack.verl.compute_score_batch, url=rules_gateway_url, scorers="math", on_unscored=-1.0)
    assert last_valid(fallback(data), data) == [-1.0]


SHIPPED_CHECK = """
import pickle, sys
compute_score = pickle.loads(sys.stdin.buffer.read())
print(compute_score(data_source="gsm8k", solution_str=sys.argv[1], ground_truth="42", extra_info=None, url=sys.argv[2], scorers="math")["score"])
"""


def test_loaded_from_its_file_by_verl_the_function_survives_rays_cloudpickle(rules_gateway_url: str) -> None:
    """verl before 0.7 loads the file as `custom_module`; Ray ships what it loaded to workers by value."""
    from verl.utils.import_utils import load_extern_object

    cloudpickle = pytest.importorskip("ray.cloudpickle")
    fn = load_extern_object(module_path=rewardstack.verl.__file__, object_name="compute_score")
    done = subprocess.run([sys.executable, "-c", SHIPPED_CHECK, SAMPLES[0][0], rules_gateway_url], input=cloudpickle.dumps(fn),
                          env=dict(os.environ), capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr.decode()
    assert float(done.stdout) == 1.0

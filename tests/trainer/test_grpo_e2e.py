"""GRPO end to end on CPU: TRL's GRPOTrainer, a tiny random byte-level model, rewards from real gateways.

The model is ~100k parameters built from a config (no hub); prompts are short so a step takes
a fraction of a second. The shipped recipe's `length` scorer (`cache_length == max_length`) pays
-len/16 for a completion of `len` characters: a random model almost never stops early, so learning
to emit EOS sooner is something GRPO can show in a dozen steps. It reads only files in the
repository, so it runs the same in a fresh clone without ../shared.
"""

from __future__ import annotations

import json
import math
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from transformers import TrainerCallback

from tests.servers import free_port, running_server
from tests.trainer.conftest import gateway_app, items_scored, score_requests
from rewardstack.cli import train_main
from rewardstack.grpo import Recipe, load_recipe, train

pytestmark = [
    pytest.mark.slow,
    # transformers deprecates `gradient_checkpointing*` names that TRL itself still calls
    pytest.mark.filterwarnings("ignore:.*gradient_checkpointing.*:FutureWarning"),
]

RECIPES = Path(__file__).resolve().parents[2] / "recipes"
BATCH = 16  # completions per step: 2 prompts x 8 generations
LENGTH = "{weight: 1.0, params: {unit: chars, max_length: 16, cache_length: 16}}"


def tiny_recipe(tmp_path: Path, urls: list[str], steps: int, **extra: str) -> Recipe:
    data = tmp_path / "prompts.jsonl"
    data.write_text("".join(json.dumps({"q": f"Say #{k}:", "a": "x"}) + "\n" for k in range(32)))
    overrides = {
        "reward.url": json.dumps(urls),
        "reward.scorers": "{length: %s, chars: {weight: 0.0}}" % LENGTH,
        "data": f"{{name: custom, path: {data}, question_field: q, answer_field: a, template: plain}}",
        "training.max_steps": str(steps),
        "training.max_completion_length": "16",
        "training.num_generations": "8",
        "training.per_device_train_batch_size": str(BATCH),
        "training.learning_rate": "3e-2",
        "training.beta": "0.0",
        "training.output_dir": str(tmp_path / "run"),
        "training.disable_tqdm": "true",
        **extra,
    }
    return load_recipe(RECIPES / "tiny_cpu.yaml", [f"{k}={v}" for k, v in overrides.items()])


def step_logs(trainer: Any) -> list[dict[str, float]]:
    return [h for h in trainer.state.log_history if "reward" in h]


def shipped_recipe(tmp_path: Path, url: str) -> Recipe:
    """recipes/tiny_cpu.yaml as a user runs it from a fresh clone: only the URL and output folder differ."""
    return load_recipe(RECIPES / "tiny_cpu.yaml", [f"reward.url={url}", f"training.output_dir={tmp_path / 'run'}", "training.disable_tqdm=true"])


def test_the_shipped_tiny_recipe_learns_against_a_real_gateway_which_scores_every_completion_once(tmp_path: Path) -> None:
    app = gateway_app(enabled_scorers="length,format")
    recipe = shipped_recipe(tmp_path, "http://unused")
    steps, batch = recipe.training["max_steps"], recipe.training["per_device_train_batch_size"]
    with running_server(app) as url:
        trainer = train(shipped_recipe(tmp_path, url))
        scored, requests = items_scored(app), score_requests(app)
    logs = step_logs(trainer)
    assert len(logs) == steps
    # every completion of every step went through the service, in one request per step
    assert (scored, requests) == (steps * batch, steps)
    # each scorer is its own reward function: TRL logs each component under the scorer's name
    assert all({"rewards/length/mean", "rewards/format/mean", "rewardstack/score_s"} <= log.keys() for log in logs)
    assert all(log["rewardstack/length/unscored_frac"] == 0 and log["rewardstack/format/unscored_frac"] == 0 for log in logs)
    rewards = [log["reward"] for log in logs]  # the total, weighted as the recipe says
    first, last = sum(rewards[:4]) / 4, sum(rewards[-4:]) / 4
    assert last > first + 0.3, f"the total reward did not rise: {rewards}"


def test_a_recipe_naming_a_hub_data_set_fails_offline_in_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))  # an empty cache: nothing to fall back on
    app = gateway_app(enabled_scorers="length,format")
    with running_server(app) as url:
        code = train_main(["--config", str(RECIPES / "tiny_cpu.yaml"), "--set", f"reward.url={url}",
                           "--set", "data.path=null", "--set", "data.hub_id=openai/gsm8k", "--set", "data.hub_config=main"])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.startswith("rewardstack train: data.hub_id: could not load 'openai/gsm8k'"), err
    assert len(err.splitlines()) == 1 and "Traceback" not in err


class KillAfterStep(TrainerCallback):
    """Shuts a gateway down (it stops accepting connections) at the end of a given step."""

    def __init__(self, server: ExitStack, step: int) -> None:
        self.server, self.step = server, step

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if state.global_step == self.step:
            self.server.close()


def test_a_gateway_killed_mid_run_fails_over_and_no_completion_is_scored_twice(tmp_path: Path) -> None:
    doomed_app, survivor_app = gateway_app(), gateway_app()
    steps = 4
    with ExitStack() as doomed, running_server(survivor_app) as survivor_url:
        doomed_url = doomed.enter_context(running_server(doomed_app))
        # chunks of 8: each step's 16 completions go out as two requests, one per gateway while both live
        recipe = tiny_recipe(tmp_path, [doomed_url, survivor_url], steps, **{"reward.chunk_size": "8"})
        trainer = train(recipe, callbacks=[KillAfterStep(doomed, step=2)])
        survivor_scored = items_scored(survivor_app)
    doomed_scored = items_scored(doomed_app)
    logs = step_logs(trainer)
    assert len(logs) == steps
    assert all(math.isfinite(log["rewards/length/mean"]) and log["rewardstack/length/unscored_frac"] == 0 for log in logs)
    assert doomed_scored > 0 and survivor_scored > 0
    assert doomed_scored + survivor_scored == steps * BATCH  # each completion scored exactly once


def test_an_unreachable_url_fails_at_start_up_with_a_clear_message(capsys: pytest.CaptureFixture[str]) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    code = train_main(["--config", str(RECIPES / "tiny_cpu.yaml"), "--set", f"reward.url={url}"])
    err = capsys.readouterr().err
    assert code == 2
    assert f"reward service at {url} did not answer" in err
    assert "rewardstack serve" in err

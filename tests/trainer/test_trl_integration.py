"""TRL's own GRPOTrainer calling our reward functions against a live gateway (tiny CPU model, no hub).

Two things only a real trainer shows: the columns it really passes (so a gold in an unexpected
column fails loudly at the first step instead of masking every `math` reward), and the token ids
it passes as `completion_ids` (so `length` is measured in the trainer's tokens).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from rewardstack import AsyncRewardClient
from rewardstack.trl import MissingScorerInput, reward_funcs, reward_weights

trl = pytest.importorskip("trl", reason="TRL is not installed: pip install -e '.[train]'")
datasets = pytest.importorskip("datasets")
from rewardstack.tiny import build_tiny_model  # noqa: E402  (needs torch and transformers, from the same extra)

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore:.*gradient_checkpointing.*:FutureWarning")]

MAX_TOKENS = 12
SCORERS: dict[str, Any] = {"math": 1.0, "length": {"weight": 0.5, "params": {"max_length": MAX_TOKENS, "cache_length": 6}}}


class RecordingTransport(httpx.AsyncHTTPTransport):
    """The real transport, keeping each request body so the test can read what the service was sent."""

    def __init__(self) -> None:
        super().__init__()
        self.bodies: list[dict[str, Any]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/score":
            self.bodies.append(json.loads(request.content))
        return await super().handle_async_request(request)


def run_grpo(tmp_path: Path, funcs: list[Any]) -> Any:
    model, tokenizer = build_tiny_model()
    data = datasets.Dataset.from_list([{"prompt": f"Say {k}:", "ground_truth": str(k)} for k in range(8)])
    args = trl.GRPOConfig(
        output_dir=str(tmp_path / "run"), use_cpu=True, max_steps=1, per_device_train_batch_size=8, num_generations=4,
        max_completion_length=MAX_TOKENS, logging_steps=1, save_strategy="no", report_to="none", seed=0,
        reward_weights=reward_weights(SCORERS), disable_tqdm=True,
    )
    trainer = trl.GRPOTrainer(model=model, reward_funcs=funcs, args=args, train_dataset=data, processing_class=tokenizer)
    trainer.train()
    return trainer


def test_a_gold_in_an_unmapped_column_stops_the_first_step_with_the_fix(rules_gateway_url: str, tmp_path: Path) -> None:
    with pytest.raises(MissingScorerInput) as caught:
        run_grpo(tmp_path, reward_funcs(rules_gateway_url, SCORERS))
    message = str(caught.value)
    assert "'math'" in message and "ground_truth" in message and "reference_columns" in message


def test_mapped_gold_and_real_token_counts_reach_the_service(rules_gateway_url: str, tmp_path: Path) -> None:
    transport = RecordingTransport()
    client = AsyncRewardClient(rules_gateway_url, transport=transport)
    trainer = run_grpo(tmp_path, reward_funcs(client, SCORERS, reference_columns=["ground_truth"]))
    (body,) = transport.bodies  # one request for both scorers
    items = body["items"]
    assert len(items) == 8
    assert {item["reference"] for item in items} <= {str(k) for k in range(8)}
    tokens = [item["metadata"]["completion_tokens"] for item in items]
    assert all(1 <= t <= MAX_TOKENS for t in tokens)
    (log,) = [h for h in trainer.state.log_history if "reward" in h]
    assert sum(tokens) / len(tokens) == pytest.approx(log["completions/mean_length"])  # TRL's own count
    assert log["rewardstack/math/unscored_frac"] == 0.0  # graded (wrong, from a random model), not masked

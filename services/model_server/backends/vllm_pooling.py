"""Optional GPU backend for scalar-head reward models: vLLM in pooling mode (`backend: "vllm"`).

Tokenization, the chat template, BOS handling and left truncation of the prompt are ours (the
same `TemplateEncoder` as the Hugging Face backend), and vLLM receives token ids, so both
backends score the same tokens. The score is the classification head's raw logit (activation
off), the same scale as `RewardBackend`. vLLM schedules its own batches; our batcher still sorts
and groups requests before handing them over.

Needs a GPU and `pip install 'rewardstack[vllm]'` (vLLM >= 0.10 for `runner="pooling"`).
This path has not been run in the project's CI (no GPU there).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rewardstack.services.model_server.backends.base import Backend, Layout, Prepared, TemplateEncoder
from rewardstack.services.model_server.backends.reward import SCALE, load_tokenizer
from rewardstack.services.model_server.schema import ModelItem, ModelOutcome

GPU_MEMORY_UTILIZATION = 0.85


def _raw_logit_params() -> Any:
    """PoolingParams with the classifier's activation off; its name changed across vLLM versions."""
    from vllm import PoolingParams

    for name in ("use_activation", "activation"):
        try:
            return PoolingParams(**{name: False})
        except TypeError:
            continue
    raise RuntimeError("this vLLM version cannot return raw classification logits; use backend 'hf'")


class VllmRewardBackend(Backend):
    kind = "reward"
    backend = "vllm"
    layout = Layout(True, "packed: vLLM schedules its own variable-length batches")

    def __init__(self, path: Path, *, max_length: int) -> None:
        try:
            from vllm import LLM
        except ImportError as exc:
            raise ValueError("backend 'vllm' needs vLLM on a GPU machine: pip install 'rewardstack[vllm]'") from exc

        self.tokenizer = load_tokenizer(path)
        self.encoder = TemplateEncoder(self.tokenizer, add_generation_prompt=False)
        self.llm = LLM(
            model=str(path),
            runner="pooling",
            dtype="bfloat16",
            max_model_len=max_length,
            gpu_memory_utilization=GPU_MEMORY_UTILIZATION,
        )
        self.params = _raw_logit_params()
        self.device, self.dtype, self.max_length, self.scale = "cuda", "bfloat16", max_length, SCALE

    def prepare(self, items: Sequence[ModelItem]) -> list[Prepared | ModelOutcome]:
        return self.encoder.prepare(items, self.max_length)

    def forward(self, batch: Sequence[Prepared]) -> list[ModelOutcome]:
        prompts = [{"prompt_token_ids": p.payload} for p in batch]
        outputs = self.llm.classify(prompts, pooling_params=self.params, use_tqdm=False)
        return [ModelOutcome(score=float(o.outputs.probs[0])) for o in outputs]

    def close(self) -> None:
        del self.llm

"""Scalar-head reward models: `AutoModelForSequenceClassification` with one label (Skywork-Reward-V2 style).

The (prompt, response) pair goes through the reward model's own chat template; the score is the
head's output at the last non-pad token (the model's own pooling, right padding). The score is
the model's raw logit: unbounded, higher is better, comparable only between responses scored by
the same model.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from rewardstack.services.model_server.backends.base import Backend, Prepared, TemplateEncoder
from rewardstack.services.model_server.backends.tensors import dtype_kwargs, pad, pick_device, release
from rewardstack.services.model_server.schema import ModelItem, ModelOutcome

SCALE = "the reward model's raw logit: unbounded real, higher is more preferred; compare only within one model"


def load_tokenizer(path: Path):  # noqa: ANN201 - transformers' tokenizer classes vary
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


class RewardBackend(Backend):
    kind = "reward"

    def __init__(self, path: Path, *, max_length: int) -> None:
        from transformers import AutoModelForSequenceClassification

        device, dtype = pick_device()
        self.tokenizer = load_tokenizer(path)
        self.encoder = TemplateEncoder(self.tokenizer, add_generation_prompt=False)
        model = AutoModelForSequenceClassification.from_pretrained(str(path), local_files_only=True, **dtype_kwargs(dtype))
        if model.config.num_labels != 1:
            raise ValueError(f"{path}: a reward model has one label; this one has {model.config.num_labels}")
        self.pad_id = int(self.tokenizer.pad_token_id)
        text_config = model.config.get_text_config()
        if text_config.pad_token_id is None:
            text_config.pad_token_id = self.pad_id
        if int(text_config.pad_token_id) != self.pad_id:
            raise ValueError(f"{path}: the model's pad_token_id {text_config.pad_token_id} differs from the tokenizer's {self.pad_id}")
        probe = self.encoder.encode("Hello?", "Hello!")
        if probe[-1] == self.pad_id:
            # the model pools at the rightmost non-pad token: a template ending in the pad token
            # would be read one token early, silently.
            raise ValueError(f"{path}: the template ends with the pad token ({self.pad_id}); configure a distinct pad token")
        self.model = model.to(device).eval()
        self.device, self.dtype, self.max_length, self.scale = str(device), str(dtype).removeprefix("torch."), max_length, SCALE
        self._torch_device = device

    def prepare(self, items: Sequence[ModelItem]) -> list[Prepared | ModelOutcome]:
        return self.encoder.prepare(items, self.max_length)

    @torch.inference_mode()
    def forward(self, batch: Sequence[Prepared]) -> list[ModelOutcome]:
        input_ids, mask = pad([p.payload for p in batch], self.pad_id, left=False, device=self._torch_device)
        logits = self.model(input_ids=input_ids, attention_mask=mask).logits[:, 0].float().cpu()
        return [ModelOutcome(score=float(v)) for v in logits]

    def close(self) -> None:
        del self.model
        release(self._torch_device)

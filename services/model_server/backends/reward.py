"""Scalar-head reward models: `AutoModelForSequenceClassification` with one label (Skywork-Reward-V2 style).

The (prompt, response) pair goes through the reward model's own chat template; the score is the
head's output at the sequence's last token. The score is the model's raw logit: unbounded, higher
is better, comparable only between responses scored by the same model.

Passes are packed (`packing.py`: one row, no padding; the head reads each sequence's last token)
where the model's attention allows it, and padded otherwise (right padding; the model's own
pooling at the last non-pad token). Start-up checks that both give the same scores.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import torch

from rewardstack.services.model_server.backends.base import Backend, Layout, Prepared, TemplateEncoder
from rewardstack.services.model_server.backends.packing import pack, select_layout
from rewardstack.services.model_server.backends.tensors import dtype_kwargs, pad, pick_device, release
from rewardstack.services.model_server.schema import ModelItem, ModelOutcome

SCALE = "the reward model's raw logit: unbounded real, higher is more preferred; compare only within one model"
PROBES = [("Hello?", "Hello!"), ("What is 2+2?", "Four: two and two make four."), (None, "A longer answer, " * 6)]


def load_tokenizer(path: Path):  # noqa: ANN201 - transformers' tokenizer classes vary
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


class RewardBackend(Backend):
    kind = "reward"

    def __init__(
        self, path: Path, *, max_length: int, packing: Literal["auto", "off"] = "auto", dtype: torch.dtype | None = None
    ) -> None:
        from transformers import AutoModelForSequenceClassification

        device, dtype = pick_device(dtype)
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
            # the padded path pools at the rightmost non-pad token: a template ending in the pad
            # token would be read one token early, silently.
            raise ValueError(f"{path}: the template ends with the pad token ({self.pad_id}); configure a distinct pad token")
        self.model = model.to(device).eval()
        self.device, self.dtype, self.max_length, self.scale = str(device), str(dtype).removeprefix("torch."), max_length, SCALE
        self._torch_device = device
        self.layout = self._select_layout(packing, dtype)

    def _select_layout(self, packing: Literal["auto", "off"], dtype: torch.dtype) -> Layout:
        if not isinstance(getattr(self.model, "score", None), torch.nn.Module):
            return Layout(False, f"padded: {type(self.model).__name__}'s head is not a `score` module over hidden states")
        rows = [self.encoder.encode(p, r) for p, r in PROBES]
        return select_layout(self.model, self._torch_device, dtype, packing, lambda: (self._packed(rows), self._padded(rows)))

    def prepare(self, items: Sequence[ModelItem]) -> list[Prepared | ModelOutcome]:
        return self.encoder.prepare(items, self.max_length)

    def forward(self, batch: Sequence[Prepared]) -> list[ModelOutcome]:
        rows = [p.payload for p in batch]
        scores = self._packed(rows) if self.layout.packed else self._padded(rows)
        return [ModelOutcome(score=v) for v in scores]

    @torch.inference_mode()
    def _padded(self, rows: Sequence[Sequence[int]]) -> list[float]:
        input_ids, mask = pad(rows, self.pad_id, left=False, device=self._torch_device)
        return self.model(input_ids=input_ids, attention_mask=mask, use_cache=False).logits[:, 0].float().cpu().tolist()

    @torch.inference_mode()
    def _packed(self, rows: Sequence[Sequence[int]]) -> list[float]:
        # the body over the packed row, then the head at each sequence's last token only
        row = pack(rows, self._torch_device)
        body = getattr(self.model, self.model.base_model_prefix)
        hidden = body(input_ids=row.input_ids, position_ids=row.position_ids, use_cache=False, **row.attention_kwargs).last_hidden_state
        return self.model.score(hidden[0, row.last])[:, 0].float().cpu().tolist()

    def close(self) -> None:
        del self.model
        release(self._torch_device)

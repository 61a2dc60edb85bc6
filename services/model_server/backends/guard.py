"""Generative guard models (Llama Guard 3, Qwen3Guard, ShieldGemma style) read in one forward pass.

The conversation goes through the guard's own template with the generation prompt (plus a fixed
answer prefix where the guard has one); the guard's next token is its verdict. The label token
ids are resolved at start-up from that exact template: the label text is appended to a rendered
probe and the first token that differs is the label's token, because "unsafe" after "\n\n" and
" unsafe" after a space are different tokens, and reading the wrong one gives confident nonsense.

Score: P(safe) among the label tokens (softmax over the labels' logits only), in [0, 1]; 1.0 is
safe. `outputs` holds each class's probability and `label_mass`, the full-vocabulary probability
of all label tokens together: a low mass means the template or labels are wrong for this model.

Passes are packed (`packing.py`: one row, no padding, logits only at each sequence's last token)
where the model's attention allows it, and left-padded otherwise; start-up checks both agree.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Literal

import torch

from rewardstack.services.model_server.backends.base import Backend, Layout, Prepared, TemplateEncoder
from rewardstack.services.model_server.backends.packing import pack, select_layout
from rewardstack.services.model_server.backends.reward import PROBES, load_tokenizer
from rewardstack.services.model_server.backends.tensors import dtype_kwargs, logits_to_keep_name, pad, pick_device, release
from rewardstack.services.model_server.schema import ModelItem, ModelOutcome

SCALE = "P(safe) in [0, 1] from the guard's label-token probabilities; 1.0 safe, 0.0 unsafe"


def resolve_label_tokens(encoder: TemplateEncoder, labels: Mapping[str, str]) -> dict[str, int]:
    """The token id each class's label starts with, right after the rendered template."""
    probe = encoder.render("Hello?", "Hello!")
    base = encoder.tokens(probe)
    resolved: dict[str, int] = {}
    for cls, text in labels.items():
        ids = encoder.tokens(probe + text)
        if ids[: len(base)] != base or len(ids) == len(base):
            raise ValueError(
                f"label {cls}={text!r} merges with the end of the template; set `response_prefix`/`labels` so "
                "the label starts a new token"
            )
        resolved[cls] = ids[len(base)]
    if len(set(resolved.values())) != len(resolved):
        raise ValueError(f"labels {dict(labels)} share their first token {resolved}; the guard cannot tell them apart")
    return resolved


class GuardBackend(Backend):
    kind = "guard"

    def __init__(
        self, path: Path, *, max_length: int, labels: Mapping[str, str], response_prefix: str = "",
        packing: Literal["auto", "off"] = "auto", dtype: torch.dtype | None = None,
    ) -> None:  # fmt: skip
        from transformers import AutoModelForCausalLM

        device, dtype = pick_device(dtype)
        self.tokenizer = load_tokenizer(path)
        self.encoder = TemplateEncoder(self.tokenizer, add_generation_prompt=True, suffix=response_prefix)
        self.label_ids = resolve_label_tokens(self.encoder, labels)
        self.pad_id = int(self.tokenizer.pad_token_id)
        self.model = AutoModelForCausalLM.from_pretrained(str(path), local_files_only=True, **dtype_kwargs(dtype)).to(device).eval()
        self.device, self.dtype, self.max_length, self.scale = str(device), str(dtype).removeprefix("torch."), max_length, SCALE
        self._torch_device = device
        self._classes = list(self.label_ids)
        self._ids = torch.tensor([self.label_ids[c] for c in self._classes], device=device)
        self._keep_name = logits_to_keep_name(self.model)
        self.layout = self._select_layout(packing, dtype)

    def _select_layout(self, packing: Literal["auto", "off"], dtype: torch.dtype) -> Layout:
        if packing == "auto" and self._keep_name != "logits_to_keep":
            # without it a packed pass would compute [total tokens, vocab] logits: gigabytes
            return Layout(False, f"padded: {type(self.model).__name__} cannot return logits at chosen positions only (`logits_to_keep`)")
        rows = [self.encoder.encode(p, r) for p, r in PROBES]
        return select_layout(
            self.model, self._torch_device, dtype, packing,
            lambda: (self._probe_scores(self._packed(rows)), self._probe_scores(self._padded(rows))),
        )  # fmt: skip

    def prepare(self, items: Sequence[ModelItem]) -> list[Prepared | ModelOutcome]:
        return self.encoder.prepare(items, self.max_length)

    def forward(self, batch: Sequence[Prepared]) -> list[ModelOutcome]:
        rows = [p.payload for p in batch]
        return self._outcomes(self._packed(rows) if self.layout.packed else self._padded(rows))

    @torch.inference_mode()
    def _padded(self, rows: Sequence[Sequence[int]]) -> torch.Tensor:
        """Next-token logits [rows, vocab] at each row's read position, from a left-padded batch."""
        # Left padding puts every row's read position last, so only one position's logits are
        # computed where the model allows it (the full [batch, length, vocab] tensor can be gigabytes).
        # Explicit position ids keep a padded row identical to the same row unpadded.
        input_ids, mask = pad(rows, self.pad_id, left=True, device=self._torch_device)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        keep = {self._keep_name: 1} if self._keep_name else {}
        logits = self.model(input_ids=input_ids, attention_mask=mask, position_ids=positions, use_cache=False, **keep).logits
        return logits[:, -1, :].float()

    @torch.inference_mode()
    def _packed(self, rows: Sequence[Sequence[int]]) -> torch.Tensor:
        """Next-token logits [rows, vocab] at each sequence's last token, from one packed row."""
        row = pack(rows, self._torch_device)
        logits = self.model(
            input_ids=row.input_ids, position_ids=row.position_ids, use_cache=False, logits_to_keep=row.last, **row.attention_kwargs
        ).logits[0]  # logits at the read positions only
        return logits.float()

    def _outcomes(self, last: torch.Tensor) -> list[ModelOutcome]:
        label_logits = last[:, self._ids]
        probs = label_logits.softmax(-1).cpu()
        mass = (last.logsumexp(-1, keepdim=True).neg() + label_logits).exp().sum(-1).cpu()
        outcomes = []
        for row in range(last.shape[0]):
            outputs = {cls: float(probs[row, i]) for i, cls in enumerate(self._classes)}
            outputs["label_mass"] = float(mass[row])
            outcomes.append(ModelOutcome(score=outputs["safe"], outputs=outputs))
        return outcomes

    def _probe_scores(self, logits: torch.Tensor) -> list[float]:
        return [v for o in self._outcomes(logits) for v in o.outputs.values()]

    def close(self) -> None:
        del self.model
        release(self._torch_device)

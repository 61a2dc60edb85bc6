"""The embedded default as a backend: one shared MiniLM encoder, one head per served model.

Scales:
- `helpfulness`: Bradley-Terry logit, unbounded real; a difference of d between two responses
  means the head puts their preference odds at e^d : 1.
- `safety`: P(safe) in [0, 1]; `outputs` adds `prompt_unsafe` (P(the prompt asks for harm)) and
  `refusal` (P(the response refuses)).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from rewardstack.services.model_server.backends.base import Backend, Layout, Prepared, too_long
from rewardstack.services.model_server.embedded.encoder import MiniLMEncoder, PairWindows
from rewardstack.services.model_server.embedded.heads import Heads, pair_features
from rewardstack.services.model_server.schema import ModelItem, ModelOutcome

SCALES = {
    "helpfulness": "Bradley-Terry logit, unbounded real, higher is more helpful; a difference d means odds e^d : 1",
    "safety": "P(safe) in [0, 1]; 1.0 safe, 0.0 unsafe; outputs: prompt_unsafe, refusal probabilities",
}


class EmbeddedBackend(Backend):
    kind = "embedded"
    layout = Layout(False, "padded: the MiniLM encoder reads fixed 256-token windows, bidirectionally")

    def __init__(self, head: str, encoder: MiniLMEncoder, heads: Heads, *, max_length: int) -> None:
        if head not in SCALES:
            raise ValueError(f"unknown embedded head {head!r}; known: {', '.join(SCALES)}")
        self.head, self.encoder, self.heads = head, encoder, heads
        self.device, self.max_length, self.scale = str(encoder.device), max_length, SCALES[head]

    def prepare(self, items: Sequence[ModelItem]) -> list[Prepared | ModelOutcome]:
        pairs = self.encoder.windows([i.prompt for i in items], [i.response for i in items])
        return [
            too_long(p.response_tokens, self.max_length) if p.response_tokens > self.max_length else Prepared(p.length, p)
            for p in pairs
        ]

    def forward(self, batch: Sequence[Prepared]) -> list[ModelOutcome]:
        pairs: list[PairWindows] = [p.payload for p in batch]
        prompts, responses, counts = self.encoder.embed_pairs(pairs)
        features = pair_features(prompts, responses, counts)
        if self.head == "helpfulness":
            return [ModelOutcome(score=float(v)) for v in self.heads.logits("helpfulness", features)]
        safe = torch.sigmoid(self.heads.logits("harmless", features))
        prompt_unsafe = torch.sigmoid(self.heads.logits("prompt_unsafe", prompts))
        refusal = torch.sigmoid(self.heads.logits("refusal", features))
        return [
            ModelOutcome(score=float(s), outputs={"prompt_unsafe": float(p), "refusal": float(r)})
            for s, p, r in zip(safe, prompt_unsafe, refusal, strict=True)
        ]

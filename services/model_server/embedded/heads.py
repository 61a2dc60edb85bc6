"""The embedded default's heads: linear models over MiniLM embeddings, a few KB, committed.

Features of a (prompt, response) pair: the response embedding, its elementwise product with the
prompt embedding (does the answer address the question?), and the log of the response length.

- `helpfulness`: Bradley-Terry logit trained on AlpacaEval pairs; score differences are log-odds
  that one response is preferred to another.
- `harmless`: logit of P(safe), trained on hh-rlhf harmless pairs (pairwise) and on XSTest
  completions (pointwise: complying with an unsafe prompt is unsafe, anything else is safe),
  which pins the absolute scale that pairs alone leave free.
- `prompt_unsafe` (on the prompt embedding) and `refusal`: logistic heads from XSTest.

Trained by `python -m rewardstack.services.model_server.train_heads`; demo-grade (see docs/models.md).
"""

from __future__ import annotations

from pathlib import Path

import torch

HEADS_FILE = Path(__file__).with_name("heads.safetensors")
PAIR_HEADS = ("helpfulness", "harmless", "refusal")
PROMPT_HEADS = ("prompt_unsafe",)


def pair_features(prompt: torch.Tensor, response: torch.Tensor, response_tokens: torch.Tensor) -> torch.Tensor:
    """[n, 2*dim + 1] features; the length term is scaled to about unit range."""
    length = torch.log1p(response_tokens).unsqueeze(-1) / 8.0
    return torch.cat([response, prompt * response, length], dim=-1)


class Heads:
    """Weight vectors and biases by head name; `logits(name, x)` = x @ w + b."""

    def __init__(self, tensors: dict[str, torch.Tensor]) -> None:
        names = PAIR_HEADS + PROMPT_HEADS
        missing = [f"{n}.{p}" for n in names for p in ("weight", "bias") if f"{n}.{p}" not in tensors]
        if missing:
            raise ValueError(f"heads file lacks {missing}")
        self.tensors = {k: v.float() for k, v in tensors.items()}

    @classmethod
    def load(cls, path: Path = HEADS_FILE) -> Heads:
        from safetensors.torch import load_file

        if not path.is_file():
            raise FileNotFoundError(f"no embedded heads at {path}; run `python -m rewardstack.services.model_server.train_heads`")
        return cls(load_file(str(path)))

    def save(self, path: Path = HEADS_FILE) -> None:
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in self.tensors.items()}, str(path))

    def logits(self, name: str, x: torch.Tensor) -> torch.Tensor:
        return x @ self.tensors[f"{name}.weight"] + self.tensors[f"{name}.bias"]

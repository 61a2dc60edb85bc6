"""What every model backend provides to the batcher, and the chat-template encoding they share.

A backend works in two steps so the batcher can sort and pack between them:

- `prepare(items)`: tokenize on a worker thread; each item becomes a `Prepared` (token ids and
  their count, the cost the batcher budgets) or, when the response alone does not fit the model's
  window, a `too_long` outcome. The prompt is cut from the left (the latest turn survives); the
  response is never cut, because a reward for half an answer is a wrong reward.
- `forward(batch)`: one forward pass over prepared items, on the model's thread: padded to the
  longest, or packed into one row without padding where the model allows it (`layout`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from rewardstack.services.model_server.schema import ModelItem, ModelOutcome, OutcomeStatus


@dataclass(frozen=True, slots=True)
class Prepared:
    """A tokenized item. `length` is the tokens it puts into a batch; `payload` is the backend's own."""

    length: int
    payload: Any


@dataclass(frozen=True, slots=True)
class Layout:
    """How a backend lays out a pass: `packed` (the sequences in one row, no padding, attention kept
    within each) or padded to the longest. `detail` names the attention kernel, or why the model is
    not packed; `/v1/models` shows both. The batcher budgets packed passes by real tokens."""

    packed: bool
    detail: str

    @property
    def name(self) -> str:
        return "packed" if self.packed else "padded"


class Backend(ABC):
    """One loaded model. `scale` says what its score means and `layout` how its passes are laid
    out; `/v1/models` serves both."""

    kind: str
    backend: str = "hf"
    device: str = "cpu"
    dtype: str = "float32"
    max_length: int
    scale: str
    layout: Layout = Layout(False, "padded")

    @abstractmethod
    def prepare(self, items: Sequence[ModelItem]) -> list[Prepared | ModelOutcome]: ...

    @abstractmethod
    def forward(self, batch: Sequence[Prepared]) -> list[ModelOutcome]: ...

    def close(self) -> None:
        """Free what the backend holds (GPU memory, engine processes). Default: nothing to free."""


def too_long(response_tokens: int, max_length: int) -> ModelOutcome:
    return ModelOutcome(
        status=OutcomeStatus.TOO_LONG,
        detail=f"the response with the template is {response_tokens} tokens; the model reads at most {max_length}",
    )


class TemplateEncoder:
    """(prompt, response) -> token ids through the model's own chat template.

    The text is rendered by the template and tokenized without the tokenizer's own special
    tokens, since templates write their BOS themselves; a BOS is added only when the template
    left it out but the tokenizer expects it, and a doubled BOS is collapsed (Llama 3 reward
    models score differently with two). `suffix` follows the generation prompt (a guard's
    fixed answer prefix, e.g. Qwen3Guard's "Safety: ").
    """

    def __init__(self, tokenizer: Any, *, add_generation_prompt: bool, suffix: str = "") -> None:
        if not getattr(tokenizer, "chat_template", None):
            raise ValueError(
                "the tokenizer has no chat_template; reward and guard models must be served with their own "
                "template (scoring raw text silently changes the scores)"
            )
        self.tokenizer = tokenizer
        self.add_generation_prompt = add_generation_prompt
        self.suffix = suffix
        bos = tokenizer.bos_token_id
        adds_bos = bos is not None and tokenizer("a").input_ids[:1] == [bos]
        self._bos: int | None = bos if adds_bos else None

    def render(self, prompt: str | None, response: str) -> str:
        messages = [{"role": "user", "content": prompt or ""}, {"role": "assistant", "content": response}]
        text = self.tokenizer.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=self.add_generation_prompt
        )
        return text + self.suffix

    def tokens(self, text: str) -> list[int]:
        ids = list(self.tokenizer(text, add_special_tokens=False).input_ids)
        if self._bos is not None:
            while ids[:2] == [self._bos, self._bos]:
                ids = ids[1:]
            if ids[:1] != [self._bos]:
                ids = [self._bos, *ids]
        return ids

    def encode(self, prompt: str | None, response: str) -> list[int]:
        return self.tokens(self.render(prompt, response))

    def fit(self, prompt: str | None, response: str, max_length: int) -> list[int] | ModelOutcome:
        """Token ids within `max_length`, cutting the prompt from the left; `too_long` when the
        response and the template alone do not fit."""
        return fit_prompt_left(lambda p: self.encode(p, response), self.tokenizer, prompt, max_length)

    def prepare(self, items: Sequence[ModelItem], max_length: int) -> list[Prepared | ModelOutcome]:
        """`fit` for each item, as the batcher wants it."""
        out: list[Prepared | ModelOutcome] = []
        for item in items:
            ids = self.fit(item.prompt, item.response, max_length)
            out.append(ids if isinstance(ids, ModelOutcome) else Prepared(len(ids), ids))
        return out


def fit_prompt_left(
    encode: Callable[[str | None], list[int]], tokenizer: Any, prompt: str | None, max_length: int
) -> list[int] | ModelOutcome:
    """Encode with the longest suffix of `prompt` that fits in `max_length` tokens.

    Re-renders after each cut because templates and tokenizers are not additive at the seam;
    each round removes at least the measured excess, so it ends in a few rounds.
    """
    ids = encode(prompt)
    if len(ids) <= max_length:
        return ids
    floor = encode("")
    if len(floor) > max_length:
        return too_long(len(floor), max_length)
    prompt_ids = list(tokenizer(prompt or "", add_special_tokens=False).input_ids)
    keep = len(prompt_ids) - (len(ids) - max_length)
    while keep > 0:
        ids = encode(tokenizer.decode(prompt_ids[-keep:]))
        if len(ids) <= max_length:
            return ids
        keep -= len(ids) - max_length
    return floor

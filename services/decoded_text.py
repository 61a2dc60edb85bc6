"""Find the response inside OpenRLHF's decoded `query` (prompt + response, special tokens kept).

OpenRLHF decodes the prompt and generated token ids together with `skip_special_tokens=False`, so
the text carries what the tokenizer added: left padding and BOS before the prompt (older, batched
versions), the chat template's turn markers, and the stop token (plus right padding) after the
response. Scoring that text whole grades the prompt (a `\\boxed{}` in a few-shot example) and fails
`format` on the trailing `<|im_end|>`. This module cuts the response out, or says why it cannot.

Rules, in order; the first that applies decides:
1. Leading pad/BOS tokens and trailing stop/pad tokens of the common families are removed
   (`KNOWN_FAMILIES`, plus any `extra_special_tokens` the caller names).
2. With a prompt: the response is what follows the prompt at the start of the query (compared
   after the same removal on both, so a doubled BOS or a leading space from the decoder does not
   matter); or, when OpenRLHF cut the prompt from the left to fit `max_len`, what follows the
   longest tail of the prompt that the query starts with (at least half the prompt and
   `MIN_TRUNCATED_OVERLAP` chars).
   A prompt found nowhere is `NotLocated`: scoring the whole query would grade the prompt.
3. Without a prompt (OpenRLHF < 0.6 sends `query` only): what follows the last assistant-turn
   marker of a known chat template, if the assistant turn before it was closed; else `NotLocated`.

Only the standard library is imported, so the trainer side (`rewardstack.openrlhf`) shares it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = ["KNOWN_FAMILIES", "Located", "NotLocated", "TokenFamily", "locate_response"]

MIN_TRUNCATED_OVERLAP = 32  # chars of a left-truncated prompt that must match before the response is trusted


@dataclass(frozen=True)
class TokenFamily:
    """The special tokens one family of tokenizers/chat templates writes around a response."""

    name: str
    leading: tuple[str, ...]  # pad / BOS that may precede the prompt
    trailing: tuple[str, ...]  # end-of-turn, EOS and pad that may follow the response
    assistant_start: tuple[str, ...]  # the generation prompt: the text right before a response
    turn_end: tuple[str, ...]  # what closes an earlier assistant turn in the prompt


KNOWN_FAMILIES: tuple[TokenFamily, ...] = (
    TokenFamily("chatml (Qwen2/2.5/3, Yi, OpenHermes)", ("<|endoftext|>",), ("<|im_end|>", "<|endoftext|>"),
                ("<|im_start|>assistant\n",), ("<|im_end|>",)),
    TokenFamily("llama3", ("<|begin_of_text|>", "<|finetune_right_pad_id|>", "<|end_of_text|>"),
                ("<|eot_id|>", "<|eom_id|>", "<|end_of_text|>", "<|finetune_right_pad_id|>"),
                ("<|start_header_id|>assistant<|end_header_id|>\n\n",), ("<|eot_id|>",)),
    TokenFamily("deepseek-r1/v3", ("<｜begin▁of▁sentence｜>", "<｜▁pad▁｜>", "<｜end▁of▁sentence｜>"),
                ("<｜end▁of▁sentence｜>", "<｜▁pad▁｜>"), ("<｜Assistant｜>",), ("<｜end▁of▁sentence｜>",)),
    TokenFamily("mistral/llama2", ("<s>", "<unk>", "</s>", "<pad>"), ("</s>", "<pad>", "<unk>"), ("[/INST]",), ("</s>",)),
    TokenFamily("gemma", ("<bos>", "<pad>"), ("<end_of_turn>", "<eos>", "<pad>"), ("<start_of_turn>model\n",), ("<end_of_turn>",)),
    TokenFamily("phi3", ("<s>",), ("<|end|>", "<|endoftext|>"), ("<|assistant|>\n", "<|assistant|>"), ("<|end|>",)),
    TokenFamily("generic", ("<pad>", "[PAD]", "<bos>", "<BOS>"), ("<eos>", "<EOS>", "<pad>", "[PAD]", "[SEP]", "</s>"), (), ()),
)


@dataclass(frozen=True)
class Located:
    """The response text, and which rule found it (reported in logs and tests)."""

    response: str
    rule: str


@dataclass(frozen=True)
class NotLocated:
    """The response cannot be cut out with certainty; `reason` says why, for the item's detail."""

    reason: str


def _tokens(families: Sequence[TokenFamily], extra: Iterable[str], attribute: str) -> tuple[str, ...]:
    found = {token for family in families for token in getattr(family, attribute)} | {t for t in extra if t}
    return tuple(sorted(found, key=len, reverse=True))  # longest first: `<|end_of_text|>` before `</s>`


def _strip_leading(text: str, tokens: Sequence[str]) -> str:
    """Drop any run of `tokens` (and whitespace between them) from the start."""
    while True:
        stripped = text.lstrip()
        for token in tokens:
            if stripped.startswith(token):
                text = stripped[len(token) :]
                break
        else:
            return text


def _strip_trailing(text: str, tokens: Sequence[str]) -> str:
    """Drop a run of `tokens` from the end; whitespace is dropped only between two of them."""
    while True:
        for token in tokens:
            if text.endswith(token):
                text = text[: -len(token)]
                inner = text.rstrip()
                if any(inner.endswith(t) for t in tokens):
                    text = inner
                break
        else:
            return text


def _after_prompt(query: str, prompt: str, leading: Sequence[str]) -> Located | None:
    if prompt and query.startswith(prompt):
        return Located(query[len(prompt) :], "prompt prefix")
    bare_query, bare_prompt = _strip_leading(query, leading).lstrip(), _strip_leading(prompt, leading).lstrip()
    if bare_prompt and bare_query.startswith(bare_prompt):
        return Located(bare_query[len(bare_prompt) :], "prompt prefix after padding/BOS")
    # OpenRLHF keeps the last max_len - max_new_tokens prompt tokens: the query starts with a tail of the prompt
    # (a cut inside a multi-byte character decodes as U+FFFD). The tail must be long, so that two
    # prompts ending in the same template text are not taken for each other.
    bare_query = bare_query.lstrip("\ufffd")
    shortest = max(MIN_TRUNCATED_OVERLAP, len(bare_prompt) // 2)
    if len(bare_query) < MIN_TRUNCATED_OVERLAP:
        return None
    # Candidate cuts are where the query's first characters occur in the prompt: linear, not a
    # comparison at every offset. The earliest candidate is the longest tail.
    probe = bare_query[:MIN_TRUNCATED_OVERLAP]
    start = bare_prompt.find(probe, 1)
    while 0 < start <= len(bare_prompt) - shortest:
        kept = len(bare_prompt) - start
        if len(bare_query) >= kept and bare_prompt.startswith(bare_query[:kept], start):
            return Located(bare_query[kept:], "left-truncated prompt")
        start = bare_prompt.find(probe, start + 1)
    return None


def _after_last_assistant_marker(query: str, markers: Sequence[str], turn_ends: Sequence[str]) -> Located | NotLocated:
    best: tuple[int, str] | None = None
    for marker in markers:
        position = query.rfind(marker)
        if position >= 0 and (best is None or position > best[0]):
            best = (position, marker)
    if best is None:
        return NotLocated("the query has no prompt and no assistant-turn marker of a known chat template; send `prompts`")
    position, marker = best
    earlier = query[:position]
    previous = max((earlier.rfind(m) for m in markers), default=-1)
    if previous >= 0 and not any(end in earlier[previous:] for end in turn_ends):
        # An assistant marker inside an unclosed assistant turn: the response itself wrote it.
        return NotLocated(f"the response contains the assistant-turn marker {marker!r}; send `prompts` to locate it")
    return Located(query[position + len(marker) :], f"after the last {marker!r}")


def locate_response(
    query: str,
    prompt: str | None,
    *,
    extra_special_tokens: Iterable[str] = (),
    families: Sequence[TokenFamily] = KNOWN_FAMILIES,
) -> Located | NotLocated:
    r"""The response inside `query`, without the special tokens around it.

    >>> locate_response("<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\nA<|im_end|>",
    ...                 "<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\n").response
    'A'
    >>> locate_response("Q: 2+2? A: 4</s>", "Q: 5+5? A:").reason
    'the prompt was not found at the start of the query (after removing padding and BOS); not scoring the query whole'
    """
    extra = tuple(extra_special_tokens)
    leading, trailing = _tokens(families, extra, "leading"), _tokens(families, extra, "trailing")
    if prompt:
        located = _after_prompt(query, prompt, leading)
        if located is None:
            return NotLocated(
                "the prompt was not found at the start of the query (after removing padding and BOS); not scoring the query whole"
            )
    else:
        found = _after_last_assistant_marker(
            query, _tokens(families, (), "assistant_start"), _tokens(families, (), "turn_end")
        )
        if isinstance(found, NotLocated):
            return found
        located = found
    return Located(_strip_trailing(located.response, trailing), located.rule)

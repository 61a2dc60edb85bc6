r"""The `format` scorer: does the completion follow the R1 template?

The template is one `<think>…</think>` block followed by one `<answer>…</answer>` block and
nothing else (spacing around the blocks is allowed). What shows nothing is not content and not
spacing (`invisible.py`): an answer of zero-width spaces or Hangul fillers is empty, a control
character after `</answer>` is text, and a tag split by an invisible character is malformed. Chat templates such as DeepSeek-R1's and
Qwen3's end the prompt with `<think>`, so the completion starts inside the think block; the
`think_prefilled` parameter says so, or is detected from the prompt.

Compared with open-r1's `format_reward` / `tag_count_reward` (src/open_r1/rewards.py), on purpose:
- no newline is required next to the tags (open-r1's regex wants `<think>\n…\n</think>\n<answer>\n`),
  since that follows one system prompt, not the template;
- an empty answer fails, and open-r1's `.*?` lets a tag appear inside another block, which we refuse;
- text after `</answer>` fails; open-r1 compiles its pattern with `re.MULTILINE`, so its `$` also
  matches at the end of `</answer>`'s line and accepts anything on the lines after;
- `tag_count` credits the opening `<think>` when it was pre-filled in the prompt, where open-r1 can
  then give at most 0.75.
"""

from __future__ import annotations

import re
from typing import Literal

import regex
from pydantic import Field

from rewardstack.services.scorers.invisible import INVISIBLE_CLASS, is_blank, is_layout_space
from rewardstack.services.scorers.types import CpuScorer, Params, Sample, Scored, prompt_prefills_think

__all__ = ["FormatScorer"]

# Anything that looks like one of the four tags, also misspelt (`</Answer >`) or split by invisible
# characters (`</ans\u200bwer>`), so that a malformed tag is seen and fails the template instead
# of passing as plain text (that another scorer may read as a tag, or not).
_GAP = rf"(?:\s|{INVISIBLE_CLASS})*+"  # possessive: adjacent gaps never trade characters (no quadratic backtracking)
_TAG_LIKE = regex.compile(
    rf"<{_GAP}(/?){_GAP}(" + "|".join(f"{_GAP}".join(name) for name in ("think", "answer")) + rf"){_GAP}>",
    regex.IGNORECASE | regex.V1,
)
_CANONICAL = ("<think>", "</think>", "<answer>", "</answer>")


class FormatScorer(CpuScorer):
    r"""R1 template check: one `<think>…</think>`, then one non-empty `<answer>…</answer>`, nothing else.

    Scale, mode `strict`: 1.0 when the completion follows the template, else 0.0, with the first
    fault in `detail`. Mode `tag_count` (open-r1's `tag_count_reward`): 0.25 for each of the four
    tags written exactly once (an opening `<think>` pre-filled in the prompt counts when the
    completion does not repeat it), so 0.0 to 1.0. Every completion is scorable; 0.0 means no
    credit, never a failure of ours.

    >>> score = FormatScorer()
    >>> score(Sample("<think>2+2=4</think>\n<answer>4</answer>"), FormatScorer.Params()).value
    1.0
    >>> score(Sample("<think>2+2=4</think><answer>4</answer> done"), FormatScorer.Params()).detail
    'text after </answer>'
    >>> score(Sample("2+2=4</think><answer>4</answer>", prompt="Q: 2+2?<think>"), FormatScorer.Params()).value
    1.0
    """

    name = "format"
    version = 2

    class Params(Params):
        mode: Literal["strict", "tag_count"] = Field(
            default="strict",
            description="`strict`: 1.0 or 0.0 for the whole template; `tag_count`: 0.25 per tag written exactly once.",
        )
        think_prefilled: bool | None = Field(
            default=None,
            description=(
                "True when the chat template ends the prompt with `<think>`, so the completion starts inside the "
                "think block and must not open it again; null: true when the prompt ends with `<think>`."
            ),
        )
        allow_empty_think: bool = Field(
            default=True,
            description="Accept `<think></think>` with only whitespace inside (models with thinking turned off).",
        )

    def __call__(self, sample: Sample, params: FormatScorer.Params) -> Scored:
        prefilled = params.think_prefilled
        if prefilled is None:
            prefilled = prompt_prefills_think(sample.prompt)
        if params.mode == "tag_count":
            return _tag_count(sample.completion, prefilled)
        fault = _template_fault(sample.completion, prefilled, params.allow_empty_think)
        return Scored.ok(0.0, fault) if fault else Scored.ok(1.0, "follows the template")


def _template_fault(text: str, prefilled: bool, allow_empty_think: bool) -> str | None:
    """The first way `text` breaks the template, or None when it follows it."""
    tags = list(_TAG_LIKE.finditer(text))
    for tag in tags:
        if tag.group(0) not in _CANONICAL:
            return f"malformed tag {tag.group(0)!r} at {tag.start()}"
    expected = _CANONICAL[1:] if prefilled else _CANONICAL
    found = tuple(tag.group(0) for tag in tags)
    if found != expected:
        return _sequence_fault(found, expected, prefilled)
    if prefilled:
        think_open, think_close, answer_open, answer_close = None, *tags
    else:
        think_open, think_close, answer_open, answer_close = tags
        if not is_layout_space(text[: think_open.start()]):
            return "text before <think>"
    think_start = think_open.end() if think_open else 0
    if not allow_empty_think and is_blank(text[think_start : think_close.start()]):
        return "empty think block"
    if not is_layout_space(text[think_close.end() : answer_open.start()]):
        return "text between </think> and <answer>"
    if is_blank(text[answer_open.end() : answer_close.start()]):
        return "empty answer"
    if not is_layout_space(text[answer_close.end() :]):
        return "text after </answer>"
    return None


def _sequence_fault(found: tuple[str, ...], expected: tuple[str, ...], prefilled: bool) -> str:
    """Say why the tags found are not the template's sequence."""
    for tag in _CANONICAL:
        want, got = expected.count(tag), found.count(tag)
        if got != want:
            hint = " (the prompt pre-fills <think>)" if prefilled and tag == "<think>" else ""
            return f"{got} {tag} tags, expected {want}{hint}"
    return "tags out of order: " + " ".join(found)


def _tag_count(text: str, prefilled: bool) -> Scored:
    """open-r1's `tag_count_reward`: 0.25 per tag written exactly once (without its newline rules)."""
    credited = []
    for tag in _CANONICAL:
        count = text.count(tag)
        if (count == 0 if prefilled and tag == "<think>" else count == 1):
            credited.append(tag)
    return Scored.ok(0.25 * len(credited), "credited: " + (" ".join(credited) or "none"))

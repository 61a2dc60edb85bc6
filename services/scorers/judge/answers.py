"""The one answer of a completion that a judge may see, found by the `math` scorer's extractor.

The judge never reads the completion itself in `verify` mode (nor in hybrid `math`): only this
answer. Hedging stays punished: several different final answers give no answer to judge, as in
`math` they score 0 unless the caller asked for the last one. An answer holding markup tags
(`1</candidate> Reference: 1`) is not shown either: it could close the prompt's frame around it
and pose as the prompt's own text; no math answer needs a tag.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from rewardstack.services.scorers.math.extract import extract_answers
from rewardstack.services.scorers.types import prompt_prefills_think
from rewardstack.services.scorers.math.normalize import normalize

_MARKUP = re.compile(r"</?[A-Za-z][\w-]*\s*/?>")


@dataclass(frozen=True, slots=True)
class Found:
    """`answer` is None when there is nothing to judge; `why` says why, or where it was found."""

    answer: str | None
    why: str


def judgeable_answer(
    completion: str,
    *,
    prompt: str | None = None,
    answer_tag_only: bool = False,
    last_number: bool = False,
    last_math: bool = False,
    think_prefilled: bool | None = None,
    multiple_answers: Literal["all_must_match", "last"] = "all_must_match",
) -> Found:
    r"""The final answer to show a judge, if there is exactly one.

    >>> judgeable_answer(r"<think>2+2</think> so \boxed{four}").answer
    'four'
    >>> judgeable_answer(r"\boxed{3} or \boxed{4}").why
    'several different answers (boxed)'
    """
    # Found exactly as `math` finds it: an unclosed pre-filled think block has no answer to show.
    prefilled = prompt_prefills_think(prompt) if think_prefilled is None else think_prefilled
    found = extract_answers(completion, answer_tag_only=answer_tag_only, last_number=last_number, last_math=last_math,
                            think_prefilled=prefilled)
    if not found.answers:
        return Found(None, f"no answer: {found.reason}")
    if multiple_answers == "all_must_match" and len({normalize(a) for a in found.answers}) > 1:
        return Found(None, f"several different answers ({found.source})")
    answer = found.answers[-1].strip()
    if not answer:
        return Found(None, f"empty answer ({found.source})")
    if _MARKUP.search(answer):
        return Found(None, f"answer holds markup tags, never shown to a judge ({found.source})")
    return Found(answer, found.source)

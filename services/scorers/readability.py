r"""The `readability` scorer: DeepSeek-R1's rejection-sampling filters as one scorer.

R1 (arXiv 2501.12948, section 2.3.3) built its reasoning SFT set by sampling from the RL
checkpoint, keeping correct answers and "filtering out chain-of-thought with mixed languages, long
paragraphs, and code blocks"; its readable output format ends the reasoning with a summary. Each
of those filters is one check here, each a parameter, each failure named in `detail`:

- `mixed_language`: every paragraph of the chain of thought (blank-line separated; code fences
  and `[asy]` figures removed) with at least `min_paragraph_words` words, and the chain of thought
  as a whole, has at least `min_language_share` of its words in one language: `language`, or,
  when unset, the main language of the whole chain of thought. A switch of script (Chinese in
  English) fails at once; a switch within one script (French in English) only with
  `same_script_min_words` words or more, because fastText misplaces short Latin-script phrases,
  lists of names and code. Words are classified by the `language` scorer's detector (fastText
  lid.176 on sentences, Unicode scripts for CJK and Hangul; code, maths, numbers and URLs stripped).
- `paragraph_length`: no paragraph of the completion (code fences excluded) is longer than
  `max_paragraph_chars` characters.
- `code_block`: no fenced code block (```` ``` ```` or `~~~`) unless the task is code.
- `summary`: when the template asks for one, non-empty text (tags aside) after the end of the
  reasoning (`</think>`).
- `repeated_lines`: no line, or block of up to four lines, repeated more than `max_line_repeats`
  times in a row (lines with no letter or digit, such as `}`, are skipped).

A whitespace-only completion fails (`empty`). Readability says nothing about correctness: a
selection combines it with `math` or `code`.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from typing import Literal

import regex
from pydantic import Field, field_validator

# The `language` scorer's detector, through its one narrow function, and its language codes.
from rewardstack.services.scorers.language import UNDETERMINED, LanguageScorer, detect_languages
from rewardstack.services.scorers.types import CpuScorer, Params, Sample, Scored

__all__ = ["ReadabilityScorer"]

# A fence opens at the start of a line (up to three spaces of indent) and runs to the next fence
# line or, unclosed (a truncated completion), to the end.
_FENCE = re.compile(r"^[ ]{0,3}(```|~~~)[^\n]*\n?(?:.*?^[ ]{0,3}\1[^\n]*$|.*\Z)", re.MULTILINE | re.DOTALL)
# Asymptote figures in MATH-style solutions: code, not language (an unclosed one runs to the end).
_ASY = re.compile(r"\[asy\].*?(?:\[/asy\]|\Z)", re.DOTALL | re.IGNORECASE)
_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n")
_THINK_OPEN = re.compile(r"<think>", re.IGNORECASE)
_TAG = re.compile(r"<\s*/?\s*[A-Za-z][\w-]*\s*/?\s*>")
_HAS_WORD = re.compile(r"\w")
# Task labels that mean the answer is a program, so code blocks belong in it.
_CODE_TASK = re.compile(r"code|program|python|human-?eval|mbpp|leetcode|codeforces|apps|livecodebench", re.IGNORECASE)
_MAX_BLOCK_LINES = 4
# A word for script counting: one CJK character, or two letters or more of any other script.
_SCRIPT_WORD = regex.compile(r"[\p{Han}\p{Hiragana}\p{Katakana}]|[[\p{L}]--[\p{Han}\p{Hiragana}\p{Katakana}]]{2,}", regex.V1)


class ReadabilityScorer(CpuScorer):
    r"""R1's readability filters: mixed languages, long paragraphs, stray code, no summary, looping lines.

    Scale, mode `all`: 1.0 when every enabled check passes, else 0.0. Mode `fraction`: the share
    of enabled checks that pass, 0.0 to 1.0. `detail` names every failed check with its evidence
    (`mixed_language: paragraph 2 is 55% en (zh 45%)`). Always scorable; a check set to null is
    off.

    >>> score = ReadabilityScorer()
    >>> score(Sample("<think>Add the two numbers.</think>The answer is 4."), ReadabilityScorer.Params()).value
    1.0
    >>> score(Sample("<think>Add them.\n```python\nprint(2+2)\n```</think>4"), ReadabilityScorer.Params()).detail
    'code_block: 1 fenced code block in a task that is not code'
    """

    name = "readability"
    version = 1

    class Params(Params):
        language: str | None = Field(
            default=None,
            description="Language every chain-of-thought paragraph must be in (`en`, `zh`, ...); null: the chain of thought's main language.",
        )
        min_language_share: float | None = Field(
            default=0.9, ge=0.0, le=1.0, description="`mixed_language`: least share of a paragraph's words in that language; null: off."
        )
        min_paragraph_words: int = Field(
            default=8, ge=1, le=10_000, description="`mixed_language`: paragraphs with fewer words are not judged (too short to tell)."
        )
        same_script_min_words: int = Field(
            default=25, ge=1, le=10_000,
            description="`mixed_language`: a switch to another language of the same script (English to French) counts only "
            "with at least this many words in it; a switch of script (English to Chinese) counts at once.",
        )
        scope: Literal["think", "completion"] = Field(
            default="think",
            description="`mixed_language` reads the text inside <think>…</think> (the whole completion when it has no think tags), or the whole completion.",
        )
        max_paragraph_chars: int | None = Field(
            default=3000, ge=1, description="`paragraph_length`: longest paragraph allowed, in characters; null: off."
        )
        code_blocks: Literal["auto", "allow", "forbid"] = Field(
            default="auto",
            description="`code_block`: `auto` allows fenced code when the item's task names code (code, python, humaneval, mbpp, ...) "
            "or the prompt holds a fenced block; `forbid` never; `allow` turns the check off.",
        )
        summary: Literal["auto", "required", "off"] = Field(
            default="auto",
            description="`summary`: `auto` requires text after the end of the reasoning when the prompt or completion uses the "
            "marker's think tags; `required` always (no marker fails); `off`.",
        )
        summary_marker: str = Field(default="</think>", min_length=1, max_length=64, description="Where the reasoning ends.")
        max_line_repeats: int | None = Field(
            default=3, ge=1, le=10_000, description="`repeated_lines`: most consecutive copies of a line or block of up to 4 lines; null: off."
        )
        mode: Literal["all", "fraction"] = Field(default="all", description="`all`: 1.0 or 0.0; `fraction`: the share of checks passed.")

        @field_validator("language")
        @classmethod
        def _known_language(cls, language: str | None) -> str | None:
            """The same codes as the `language` scorer's `target` (`zh-CN` -> `zh`)."""
            return LanguageScorer.Params(target=language).target

    def __call__(self, sample: Sample, params: ReadabilityScorer.Params) -> Scored:
        text = sample.completion
        if not text.strip():
            return Scored.ok(0.0, "empty: the completion is empty")
        checks = {
            "mixed_language": params.min_language_share is not None,
            "paragraph_length": params.max_paragraph_chars is not None,
            "code_block": params.code_blocks != "allow",
            "summary": params.summary != "off",
            "repeated_lines": params.max_line_repeats is not None,
        }
        failures = [
            f"{name}: {fault}"
            for name, enabled in checks.items()
            if enabled and (fault := _CHECKS[name](sample, params)) is not None
        ]
        enabled = sum(checks.values())
        if not failures:
            return Scored.ok(1.0, f"passed {enabled} checks")
        value = 0.0 if params.mode == "all" else (enabled - len(failures)) / enabled
        return Scored.ok(value, "; ".join(failures))


def _mixed_language(sample: Sample, params: ReadabilityScorer.Params) -> str | None:
    think = _chain_of_thought(sample.completion, params.scope, params.summary_marker)
    # Words the detector cannot place (`und`: a short aside, a formula line) are evidence of neither
    # mixing nor consistency: mixing is words placed in another language.
    texts = _paragraphs(_ASY.sub("\n\n", _FENCE.sub("\n\n", think)))
    paragraphs = [(_placed(detect_languages(p, params.language)), _scripts(p)) for p in texts]
    overall = (sum((c for c, _ in paragraphs), Counter()), sum((s for _, s in paragraphs), Counter()))
    target = params.language or (overall[0].most_common(1)[0][0] if overall[0] else None)
    main_script = overall[1].most_common(1)[0][0] if overall[1] else None
    assert params.min_language_share is not None
    # Each paragraph long enough to judge, then the whole: short paragraphs in another language
    # (a one-line Chinese aside after a terse English derivation) add up to mixing too.
    for where, (counts, scripts) in [*((f"paragraph {n}", p) for n, p in enumerate(paragraphs, start=1)), ("the chain of thought", overall)]:
        total = sum(counts.values())
        if target is None or total < params.min_paragraph_words:
            continue
        share = counts[target] / total
        if share >= params.min_language_share:
            continue
        # Another script (Chinese in English) is certain from a few characters; another language of
        # the same script (French in English) only from a long run: fastText misplaces short
        # Latin-script phrases, lists of names and code (`label("$y$", E);` -> Tamil).
        other_script = sum(n for script, n in scripts.items() if script != main_script) / max(1, sum(scripts.values()))
        if other_script > 1 - params.min_language_share or total - counts[target] >= params.same_script_min_words:
            others = ", ".join(f"{lang} {n / total:.0%}" for lang, n in counts.most_common(3) if lang != target)
            return f"{where} is {share:.0%} {target} ({others})"
    return None


def _placed(counts: Counter[str]) -> Counter[str]:
    return Counter({lang: n for lang, n in counts.items() if lang != UNDETERMINED})


def _scripts(text: str) -> Counter[str]:
    """Words per Unicode script (CJK characters one each): LATIN, CJK, CYRILLIC, HANGUL, ..."""
    counts: Counter[str] = Counter()
    for word in _SCRIPT_WORD.findall(text):
        script = unicodedata.name(word[0], "UNKNOWN").split()[0]
        counts["CJK" if script in ("CJK", "HIRAGANA", "KATAKANA") else script] += 1
    return counts


def _paragraph_length(sample: Sample, params: ReadabilityScorer.Params) -> str | None:
    assert params.max_paragraph_chars is not None
    for number, paragraph in enumerate(_paragraphs(_FENCE.sub("\n\n", sample.completion)), start=1):
        if len(paragraph) > params.max_paragraph_chars:
            return f"paragraph {number} has {len(paragraph)} characters, over {params.max_paragraph_chars}"
    return None


def _code_block(sample: Sample, params: ReadabilityScorer.Params) -> str | None:
    if params.code_blocks == "auto" and _is_code_task(sample):
        return None
    blocks = len(_FENCE.findall(sample.completion))
    return f"{blocks} fenced code block{'s' if blocks > 1 else ''} in a task that is not code" if blocks else None


def _summary(sample: Sample, params: ReadabilityScorer.Params) -> str | None:
    marker = params.summary_marker
    lowered = sample.completion.lower()
    if params.summary == "auto":
        opener = marker.replace("/", "", 1) if marker.startswith("</") else marker
        in_prompt = sample.prompt is not None and opener.lower() in sample.prompt.lower()
        if not (in_prompt or opener.lower() in lowered or marker.lower() in lowered):
            return None  # the template does not use think tags: nothing to require
    end = lowered.rfind(marker.lower())
    if end == -1:
        return f"no {marker}: the reasoning never ends, so no summary follows it"
    after = _TAG.sub(" ", sample.completion[end + len(marker) :])
    return None if after.strip() else f"nothing but tags after {marker}"


def _repeated_lines(sample: Sample, params: ReadabilityScorer.Params) -> str | None:
    assert params.max_line_repeats is not None
    lines = [line.strip() for line in sample.completion.splitlines() if _HAS_WORD.search(line)]
    for period in range(1, _MAX_BLOCK_LINES + 1):
        run = 0  # consecutive lines equal to the line `period` before them
        for i in range(period, len(lines)):
            run = run + 1 if lines[i] == lines[i - period] else 0
            copies = run // period + 1
            if copies > params.max_line_repeats:
                what = "a line" if period == 1 else f"a block of {period} lines"
                return f"{what} repeated {copies} times in a row: {lines[i][:60]!r}"
    return None


_CHECKS = {
    "mixed_language": _mixed_language,
    "paragraph_length": _paragraph_length,
    "code_block": _code_block,
    "summary": _summary,
    "repeated_lines": _repeated_lines,
}


def _paragraphs(text: str) -> list[str]:
    """Blank-line separated blocks; a tag (`<think>`, `</think>`, `<answer>`) also ends one."""
    return [p.strip() for p in _PARAGRAPH_BREAK.split(_TAG.sub("\n\n", text)) if p.strip()]


def _chain_of_thought(completion: str, scope: str, marker: str) -> str:
    """The text whose paragraphs must each be in one language."""
    if scope == "completion":
        return completion
    end = completion.lower().find(marker.lower())
    end = len(completion) if end == -1 else end
    opened = _THINK_OPEN.search(completion, 0, end)
    return completion[opened.end() if opened else 0 : end]


def _is_code_task(sample: Sample) -> bool:
    return bool(sample.task and _CODE_TASK.search(sample.task)) or bool(sample.prompt and _FENCE.search(sample.prompt))

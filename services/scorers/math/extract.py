r"""Find the final answer in a completion, and the gold in a reference.

Regex-free where nesting matters: `\boxed{...}` is matched by counting braces in one linear scan,
so 5,000 nested braces or a 100,000-character answer cost one pass and no backtracking. The
answer's *content* is judged later (guards, parse, compare); this module only locates it.

Order, after dropping everything up to the last `</think>`:
1. the `<answer>...</answer>` block (required when `answer_tag_only`; two blocks are a hedge);
2. inside that region, every `\boxed{}` / `\fbox{}` (unless an explicit "Final answer: X" line
   comes after the last box: then only that line);
3. else a "final answer is X" / "answer: X" phrase (none when hedged: "Or the answer is X"), or
   GSM8K's `#### X`;
4. else the completion itself when it is a single formula (`$\frac{1}{2}$`) or a bare answer;
5. else, when allowed, the last formula (`last_math`), then the last number (`last_number`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .normalize import repair

__all__ = ["Extraction", "extract_answers", "find_boxed", "gold_text"]

_BOX_COMMANDS = ("\\boxed", "\\fbox")
_ANSWER_TAG = re.compile(r"<answer>(.*?)(?:</answer>|\Z)", re.DOTALL)
# "The final answer is $42$.", "Final Answer: 42", "the answer is: 42", "Answer: 42"
_PHRASE = re.compile(
    r"(?:final\s+answer|\banswer)\**\s*(?:is|:|=)\s*\**\s*:?[ \t]*([^\n]{1,400})", re.IGNORECASE
)
_FINAL_ANSWER = re.compile(r"final\s+answer\**\s*(?:is|:|=)", re.IGNORECASE)
_HASHES = re.compile(r"####[ \t]*([^\n]{1,400})")
# A number standing alone as a token: not the `2` of `AZYUK2A`; letters after it only as a unit (`12cm`).
_LAST_NUMBER = re.compile(r"(?<![A-Za-z0-9_.])(-?\d+/\d+|-?\d[\d,]*(?:\.\d+)?|-?\.\d+)([A-Za-z_]*)")
_TOKEN_UNITS = frozenset("m cm mm km g kg mg l ml s h hr hrs min ft in yd mi lb lbs oz".split())
# "Maybe 41. Or the answer is 42.": a hedging word before the phrase, in its own sentence.
_HEDGE_BEFORE = re.compile(r"\b(?:or|maybe|perhaps|possibly)\b[^.!?\n]*$", re.IGNORECASE)
_TRAILING = re.compile(r"[\s.;:]+$")
# `$..$`, `$$..$$`, `\[..\]`, `\(..\)`; an escaped `\$` is a dollar sign, not a delimiter
_MATH_SPAN = re.compile(r"\$\$(.+?)\$\$|\\\[(.+?)\\\]|\\\((.+?)\\\)|(?<![\\$])\$((?:\\\$|[^$])+?)\$", re.DOTALL)
# "The volume of $ABCH$ is 120": a sentence of words whose last " is " names the answer
_SENTENCE_IS = re.compile(r"(?=.*[A-Za-z]{3}).*\bis\s+(.+)$")
_WORDS = re.compile(r"[A-Za-z]{4,}")
_COMMANDS = re.compile(r"\\[A-Za-z]+")
_QUOTES = re.compile("^(?:\\\\?[\"'`\u201c\u201d]\\s*)+")  # an answer quoted: `\\"$12$\\"`, `"42"`
_OR_BETWEEN = re.compile(r"\bor\b|\bmaybe\b|\bperhaps\b", re.IGNORECASE)


def _has_words(text: str) -> bool:
    """Prose, not a bare answer: a word of two or more letters standing alone, or of four or more anywhere."""
    without_commands = _COMMANDS.sub(" ", text)
    standalone = [t for t in without_commands.split() if t.isalpha() and len(t) >= 2 and t.lower() not in ("or", "and")]
    return bool(standalone) or bool(_WORDS.search(without_commands))


@dataclass(frozen=True, slots=True)
class Extraction:
    """Where the answer came from (`boxed`, `answer_tag`, `phrase`, `hashes`, `last_number`) and
    every candidate found there, in order. Empty `answers` means no answer; `reason` says why."""

    answers: tuple[str, ...]
    source: str = ""
    reason: str = ""


def find_boxed(text: str) -> list[str]:
    r"""Contents of every brace-balanced `\boxed{...}` / `\fbox{...}` (also `\boxed 5`), in order.

    An unclosed box (a truncated completion) is ignored.
    >>> find_boxed(r"so \boxed{\frac{1}{2}} or \fbox{3}")
    ['\\frac{1}{2}', '3']
    """
    found: list[str] = []
    i = 0
    while True:
        starts = [(text.find(cmd, i), cmd) for cmd in _BOX_COMMANDS]
        starts = [(pos, cmd) for pos, cmd in starts if pos >= 0]
        if not starts:
            return found
        pos, cmd = min(starts)
        j = pos + len(cmd)
        if text.startswith(" ", j) and j + 1 < len(text) and text[j + 1] not in "{ ":
            # `\boxed 5`: TeX takes one token; we take up to the next space or `$`.
            end = j + 1
            while end < len(text) and text[end] not in " $\n":
                end += 1
            found.append(text[j + 1 : end])
            i = end
            continue
        while j < len(text) and text[j] == " ":
            j += 1
        if j >= len(text) or text[j] != "{":
            i = pos + len(cmd)
            continue
        end = _closing_brace(text, j)
        if end < 0:
            return found
        found.append(text[j + 1 : end])
        i = end + 1


def _closing_brace(text: str, open_at: int) -> int:
    """Index of the `}` closing the `{` at `open_at`, skipping escaped `\\{`/`\\}`; -1 if none."""
    depth = 0
    i = open_at
    n = len(text)
    while i < n:
        c = text[i]
        if c == "\\":
            i += 2
            continue
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return -1


def _after_think(completion: str, think_prefilled: bool) -> tuple[str | None, str]:
    """The text after the reasoning block; None when a `<think>` was opened and never closed,
    also when the prompt pre-filled it (`think_prefilled`) and the completion never closes it."""
    close = completion.rfind("</think>")
    if close >= 0:
        return completion[close + len("</think>") :], ""
    if "<think>" in completion:
        return None, "unclosed <think> block: the reasoning never finished"
    if think_prefilled:
        return None, "the prompt pre-filled <think> and the completion never closes it"
    return completion, ""


def _clean(candidate: str) -> str:
    text = candidate.strip()
    if text.startswith("$") and text.count("$") >= 2:
        text = text[1 : text.index("$", 1)] if text.count("$") == 2 else text.strip("$")
    for opener, closer in (("\\(", "\\)"), ("\\[", "\\]")):
        if text.startswith(opener) and text.endswith(closer):
            text = text[len(opener) : -len(closer)]
    return _TRAILING.sub("", text).strip()


def extract_answers(
    completion: str,
    *,
    answer_tag_only: bool = False,
    last_number: bool = False,
    last_math: bool = False,
    think_prefilled: bool = False,
) -> Extraction:
    """Locate the final answer(s) of `completion`; see the module docstring for the order."""
    region, why = _after_think(completion, think_prefilled)
    if region is None:
        return Extraction((), reason=why)
    tags = _ANSWER_TAG.findall(region)
    if len(tags) > 1:
        return Extraction((), reason=f"{len(tags)} <answer> blocks: more than one answer is a hedge")
    if tags:
        inner = "\n".join(tags)
        boxed = find_boxed(inner)
        if boxed:
            return Extraction(tuple(_clean(b) for b in boxed), "boxed")
        phrase = _phrase(inner)
        if phrase is None:
            return Extraction((), reason="the final-answer phrase is hedged")
        if phrase:
            return Extraction((phrase,), "answer_tag")
        return Extraction(tuple(_clean(t) for t in tags), "answer_tag")
    if answer_tag_only:
        return Extraction((), reason="no <answer>...</answer> block (answer_tag_only is set)")
    boxed = find_boxed(region)
    final = list(_FINAL_ANSWER.finditer(region))
    last_box = max(region.rfind(cmd) for cmd in _BOX_COMMANDS)
    if boxed and final and final[-1].start() > last_box + len(boxed[-1]):
        # "... = \boxed{255} ... Final Answer: The final answer is $10,455$.": boxes held intermediate
        # results; an explicit final-answer line after the last box is the answer (and only it is read).
        phrase = _phrase(region[final[-1].start() :])
        if phrase is None:
            return Extraction((), reason="the final-answer phrase is hedged")
        if phrase:
            return Extraction((phrase,), "phrase")
    if boxed:
        return Extraction(tuple(_clean(b) for b in boxed), "boxed")
    # A phrase or `#### N`, whichever comes last: "the answer is 40? no..." then "#### 42".
    hashes = list(_HASHES.finditer(region))
    phrase_at = max((m.start() for m in _PHRASE.finditer(region)), default=-1)
    if hashes and hashes[-1].start() > phrase_at:
        return Extraction((_clean(hashes[-1].group(1)),), "hashes")
    phrase = _phrase(region)
    if phrase is None:
        return Extraction((), reason="the final-answer phrase is hedged ('or the answer is', 'maybe the answer is')")
    if phrase:
        return Extraction((phrase,), "phrase")
    spans = list(_MATH_SPAN.finditer(region))
    if len(spans) == 1 and not _TRAILING.sub("", region[: spans[0].start()] + region[spans[0].end() :]).strip():
        return Extraction((_clean(_span_text(spans[0])),), "whole")  # the completion is one formula: `$\frac{1}{2}$`
    bare = region.strip()
    if not spans and len(bare) <= 100 and "\n" not in bare and "box" not in bare and not _has_words(bare):
        return Extraction((_clean(bare),), "whole")  # the completion is the answer alone: `\frac{10}{9}`
    # Fallbacks (opt-in): the last formula or the last number, whichever ends later.
    found: list[tuple[int, Extraction]] = []
    if last_math and spans:
        between = region[spans[-2].end() if len(spans) > 1 else 0 : spans[-1].start()]
        if len(spans) > 1 and _OR_BETWEEN.search(between):
            found.append((spans[-1].end(), Extraction((), reason="the last two formulas are alternatives ('or'): a hedge")))
        else:
            found.append((spans[-1].end(), Extraction((_clean(_span_text(spans[-1])),), "last_math")))
    if last_number:
        numbers = [m for m in _LAST_NUMBER.finditer(region) if not m.group(2) or m.group(2).lower() in _TOKEN_UNITS]
        if numbers:
            found.append((numbers[-1].end(1), Extraction((numbers[-1].group(1).rstrip(","),), "last_number")))
    if found:
        return max(found, key=lambda item: item[0])[1]
    return Extraction((), reason="no boxed answer, <answer> block or final-answer phrase found")


def _span_text(match: re.Match[str]) -> str:
    return next(g for g in match.groups() if g is not None)


def _phrase(text: str) -> str | None:
    """The answer named by the last "final answer is X" phrase, '' when there is none, None when it is hedged."""
    matches = list(_PHRASE.finditer(text))
    if not matches:
        return ""
    sentence_start = max(text.rfind(c, 0, matches[-1].start()) for c in ".!?\n") + 1
    if _HEDGE_BEFORE.search(text[sentence_start : matches[-1].start()]):
        return None  # "Or the answer is 42": a second candidate, not a final answer
    answer = _phrase_tail(matches[-1])
    while (inner := _PHRASE.search(answer)) is not None:  # "Final Answer: The final answer is $X$."
        answer = _phrase_tail(inner)
    answer = _QUOTES.sub("", answer)  # "The final answer is \\"$12$ and $13$\\"."
    joined = _joined_spans(answer)
    if joined:
        return joined
    span = _MATH_SPAN.match(answer)
    if span:  # "The answer is $42$ because ..." -> the formula
        return _clean(_span_text(span))
    if answer.startswith("$"):  # an unclosed formula
        return _clean(answer.strip("$"))
    sentence = re.split(r"(?<=[^\d\s])\.(?:\s|$)|\.\s", answer, maxsplit=1)[0].strip().strip("*")
    sentence = sentence.rstrip("\"'`\u201c\u201d\\ ")  # the closing quote of a quoted answer
    subject = _SENTENCE_IS.match(sentence)
    if subject:  # "Final Answer: The largest $n$ is 34." -> what the sentence says it is
        sentence = subject.group(1)
        span = _MATH_SPAN.match(sentence)
        if span:
            return _clean(_span_text(span))
    return _clean(sentence)


def _joined_spans(text: str) -> str:
    """`$12$ and $13$`, `$1$, $2$`: formulas joined only by commas and "and"/"or", as one answer."""
    sentence = re.split(r"(?<=[$)\]\"'])\s*\.(?:\s|$)", text, maxsplit=1)[0]
    spans = list(_MATH_SPAN.finditer(sentence))
    if len(spans) < 2 or spans[0].start() != 0:
        return ""
    residue = _MATH_SPAN.sub(" ", sentence)
    if not re.fullmatch(r"[\s,;.\\\"'`]*(?:(?:and|or)[\s,;.\\\"'`]*)*", residue):
        return ""
    pieces = [_span_text(m).strip() for m in spans]
    connectives = [sentence[a.end() : b.start()].strip(" .") for a, b in zip(spans, spans[1:])]
    out = pieces[0]
    for connective, piece in zip(connectives, pieces[1:]):
        out += f" \\text{{ {connective} }} {piece}" if connective.strip(",; ") else f", {piece}"
    return _clean(out)


def _phrase_tail(match: re.Match[str]) -> str:
    return match.group(1).strip().strip("*").strip()  # "**Final Answer:** 42", "Answer: **42**"


# between two boxes of a gold, a word that takes the first one back
_CORRECTION = re.compile(r"\b(?:no|not|wait|actually|instead|or|but|wrong|rather|oops)\b", re.IGNORECASE)


def _only_separators_between(text: str, boxes: list[str]) -> bool:
    """Whether the boxes of a gold are parts of one answer: no word between them takes one back."""
    positions = []
    start = 0
    for content in boxes:
        at = text.find(content, start)
        positions.append((at, at + len(content)))
        start = at + len(content)
    for (_, end), (begin, _) in zip(positions, positions[1:]):
        between = text[end + 1 : begin]
        between = re.sub(r"\\(?:boxed|fbox)\s*\{$", "", between)
        if _CORRECTION.search(between):
            return False
    return True


def gold_text(reference: object) -> str | None:
    r"""The gold answer as text: GSM8K's `#### N` and a boxed solution are reduced to the answer.

    None when there is no usable reference (missing, empty, not a string or number).
    >>> gold_text("She pays 3 * 4 = 12 dollars.\n#### 12")
    '12'
    """
    if isinstance(reference, bool) or reference is None:
        return None
    if isinstance(reference, (int, float)):
        return repr(reference)
    if not isinstance(reference, str):
        return None
    text = repair(reference).strip()  # before stripping: a form feed may be the `\f` of `\frac`
    if "####" in text:
        text = text.rsplit("####", 1)[1]
    elif "\\boxed" in text or "\\fbox" in text:
        raw = find_boxed(text)
        boxed = list(dict.fromkeys(_clean(b) for b in raw))
        if len(boxed) > 1 and _only_separators_between(text, raw):
            text = ", ".join(f"{{{b}}}" for b in boxed)  # `\boxed{1}, \boxed{2}`: one answer in parts, their list
        elif boxed:
            text = _clean(raw[-1])  # `\boxed{1} no, \boxed{2}`: the last
        elif text.lstrip("$ ").startswith(("\\boxed{", "\\fbox{")):
            text = text.lstrip("$ ").split("{", 1)[1]  # a gold whose box was never closed (the data set cut it): its content
    text = _clean(text)
    return text or None

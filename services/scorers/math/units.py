r"""Which words may follow a number in an answer: units, ordinal suffixes and a few counting nouns.

A policy could otherwise hide a hedge in trailing words (`42 \text{ or more}`,
`42 \text{ plus or minus one}`) that a lenient unit stripper drops. Words after an answer's number
are accepted only when every word is listed here, or when the gold carries the same words.
Units are never converted (`50 cm` is not `0.5 m`): the words are only allowed to be there.
"""

from __future__ import annotations

import re

__all__ = ["allowed_unit", "is_known_unit"]

_UNITS = frozenset(
    """
    m meter meters metre metres cm centimeter centimeters mm millimeter millimeters km kilometer kilometers
    in inch inches ft foot feet yd yard yards mi mile miles nm
    g gram grams kg kilogram kilograms mg milligram milligrams lb lbs pound pounds oz ounce ounces ton tons tonne tonnes
    l liter liters litre litres ml milliliter milliliters gallon gallons gal quart quarts pint pints cup cups
    s sec secs second seconds min mins minute minutes h hr hrs hour hours day days week weeks month months
    year years yr yrs decade decades century centuries
    mph kph kmh mps km/h m/s
    dollar dollars cent cents usd euro euros eur yuan yen rupee rupees rs
    degree degrees deg radian radians rad
    square sq cubic cu unit units per squared cubed
    percent pct percentage
    th st nd rd
    ways people persons students children items pieces times integers numbers values solutions steps moves
    games pages books apples marbles coins balls cards boxes handshakes points sequences
    """.split()
)
_WORD = re.compile(r"[A-Za-z/]+")


def is_known_unit(words: str) -> bool:
    """Every word of `words` is a unit, an ordinal suffix or a counting noun (`square feet`, `cm`, `th`)."""
    found = _WORD.findall(words)
    return bool(found) and all(w.lower().rstrip(".") in _UNITS for w in found)


def allowed_unit(answer_unit: str, gold_unit: str) -> bool:
    """Whether an answer's trailing words may stand: none, known units, or the gold's own words."""
    if not answer_unit:
        return True
    return is_known_unit(answer_unit) or _fold(answer_unit) == _fold(gold_unit)


def _fold(text: str) -> str:
    return "".join(c for c in text.lower() if c.isalnum())

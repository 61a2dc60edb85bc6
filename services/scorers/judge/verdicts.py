"""What the judge must answer, and the strict reading of its reply.

Each mode asks for one JSON object: `{"equivalent": true|false}` (verify) or `{"score": N}`
(rubric). Servers that take `response_format` get the same shape as a JSON schema, so even a weak
model can only produce a readable verdict; others are asked for it in the prompt and the reply is
read just as strictly: one JSON object, exactly the expected key, the right type, in range. A
leading `<think>...</think>` block (reasoning judges) and a Markdown code fence are allowed around
it; anything else (prose, two objects, `"yes"`, 7.5 on an integer scale) is `Unparseable`, which
the scorer reports as `unscorable`, never as a number.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

_THINK = re.compile(r"\A\s*<think>.*?</think>", re.DOTALL)
_FENCE = re.compile(r"\A```(?:json)?\s*(.*?)\s*```\Z", re.DOTALL)
MAX_REPLY_CHARS = 20_000


class Unparseable(ValueError):
    """The judge's reply is not the verdict it was asked for."""


@dataclass(frozen=True)
class VerifyVerdict:
    """verify: 1.0 equivalent, 0.0 not."""

    def schema(self) -> dict[str, Any]:
        return {
            "type": "object",
            "properties": {"equivalent": {"type": "boolean"}},
            "required": ["equivalent"],
            "additionalProperties": False,
        }

    def read(self, reply: str) -> float:
        value = _object(reply, "equivalent")
        if not isinstance(value, bool):
            raise Unparseable(f'"equivalent" must be true or false, got {_short(json.dumps(value))}')
        return 1.0 if value else 0.0


@dataclass(frozen=True)
class RubricVerdict:
    """rubric: an integer from `scale_min` to `scale_max`, normalised to [0, 1]."""

    scale_min: int
    scale_max: int

    def schema(self) -> dict[str, Any]:
        return {
            "type": "object",
            "properties": {"score": {"type": "integer", "minimum": self.scale_min, "maximum": self.scale_max}},
            "required": ["score"],
            "additionalProperties": False,
        }

    def read(self, reply: str) -> float:
        value = _object(reply, "score")
        # bool is an int in Python, and 7.0 is not an integer answer on an integer scale
        if isinstance(value, bool) or not isinstance(value, int):
            raise Unparseable(f'"score" must be an integer, got {_short(json.dumps(value))}')
        if not self.scale_min <= value <= self.scale_max:
            raise Unparseable(f'"score" {value} is outside the scale {self.scale_min}..{self.scale_max}')
        return (value - self.scale_min) / (self.scale_max - self.scale_min)


Verdict = VerifyVerdict | RubricVerdict


def _object(reply: str, key: str) -> Any:
    """The value of `key` in the reply's one JSON object, which must hold nothing else."""
    if len(reply) > MAX_REPLY_CHARS:
        raise Unparseable(f"reply of {len(reply)} characters; a verdict is a short JSON object")
    text = _THINK.sub("", reply, count=1).strip()
    if fenced := _FENCE.match(text):
        text = fenced.group(1)
    try:
        obj = json.loads(text)
    except ValueError:
        raise Unparseable(f"not a JSON object: {_short(text)!r}") from None
    if not isinstance(obj, dict) or set(obj) != {key}:
        raise Unparseable(f'expected {{"{key}": ...}} and nothing else, got {_short(text)!r}')
    return obj[key]


def _short(text: str, limit: int = 120) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."

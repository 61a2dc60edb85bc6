"""Small CPU scorers that misbehave on purpose, to test the gateway and its pool.

They live in an importable module (not a test file) because worker processes import them by name.
"""

from __future__ import annotations

import os
import time
from typing import ClassVar

from pydantic import Field

from rewardstack.services.scorers.types import CpuScorer, Params, Sample, Scored

_hoard: list[bytes] = []


class Number(CpuScorer):
    """Value = the completion read as a float; `spin`, `sleep:S`, `raise`, `exit`, `hoard:MB` misbehave."""

    name: ClassVar[str] = "number"
    version: ClassVar[int] = 3

    class Params(Params):
        scale: float = Field(default=1.0, description="multiplies the value")

    def __call__(self, sample: Sample, params: Params) -> Scored:
        text = sample.completion
        if text == "spin":
            while True:
                pass
        if text.startswith("sleep:"):
            time.sleep(float(text.split(":")[1]))
            return Scored.ok(0.0)
        if text == "raise":
            raise ValueError("boom")
        if text == "exit":
            os._exit(3)
        if text.startswith("hoard:"):
            _hoard.append(bytearray(int(text.split(":")[1]) * 1024 * 1024))
            return Scored.ok(0.0)
        if text == "none":
            return Scored.unscorable("nothing to read")
        return Scored.ok(float(text) * params.scale)


class Length(CpuScorer):
    """Value = number of characters."""

    name: ClassVar[str] = "chars"
    version: ClassVar[int] = 1
    Params: ClassVar[type[Params]] = Params

    def __call__(self, sample: Sample, params: Params) -> Scored:
        return Scored.ok(float(len(sample.completion)))

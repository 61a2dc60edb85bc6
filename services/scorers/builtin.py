"""The CPU scorers every gateway serves, in the order `GET /v1/scorers` lists them."""

from __future__ import annotations

from services.scorers.format import FormatScorer
from services.scorers.language import LanguageScorer
from services.scorers.length import LengthScorer
from services.scorers.math import MathScorer
from services.scorers.repetition import RepetitionScorer
from services.scorers.types import CpuScorer


# Opened by the gateway's lifespan because they call other services (sandbox, models).
SERVICE_SCORER_NAMES = ("code", "helpfulness", "safety")


def builtin_cpu_scorers() -> list[CpuScorer]:
    return [MathScorer(), FormatScorer(), LanguageScorer(), LengthScorer(), RepetitionScorer()]

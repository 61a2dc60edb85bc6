"""The CPU scorers every gateway serves, in the order `GET /v1/scorers` lists them."""

from __future__ import annotations

from rewardstack.services.scorers.format import FormatScorer
from rewardstack.services.scorers.language import LanguageScorer
from rewardstack.services.scorers.length import LengthScorer
from rewardstack.services.scorers.math import MathScorer
from rewardstack.services.scorers.readability import ReadabilityScorer
from rewardstack.services.scorers.repetition import RepetitionScorer
from rewardstack.services.scorers.types import CpuScorer


# Opened by the gateway's lifespan because they call other services (sandbox, models, judge).
SERVICE_SCORER_NAMES = ("code", "helpfulness", "safety", "judge")


def builtin_cpu_scorers() -> list[CpuScorer]:
    return [MathScorer(), FormatScorer(), LanguageScorer(), LengthScorer(), RepetitionScorer(), ReadabilityScorer()]

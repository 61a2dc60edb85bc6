"""The CPU scorers every gateway serves. Imported once by the worker pool's fork server, so workers start warm."""

from __future__ import annotations

from services.scorers.types import CpuScorer


def builtin_cpu_scorers() -> list[CpuScorer]:
    return []

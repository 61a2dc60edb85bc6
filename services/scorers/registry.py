"""The scorer registry: API name -> scorer. Raises on unknown and duplicate names.

`build_registry` is the one place that decides which scorers a gateway serves: the CPU scorers
(run in the worker pool) and the service scorers opened by the lifespan (sandbox, models).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from rewardstack.services.scorers.types import BatchScorer


class UnknownScorer(LookupError):
    def __init__(self, scorer_id: str, known: Iterable[str]) -> None:
        self.scorer_id = scorer_id
        self.known = sorted(known)
        super().__init__(f"no scorer {scorer_id!r}; known: {', '.join(self.known)}")


class DuplicateScorer(ValueError):
    pass


class ScorerRegistry:
    """Scorers by API name, in registration order."""

    def __init__(self, scorers: Iterable[BatchScorer] = ()) -> None:
        self._scorers: dict[str, BatchScorer] = {}
        for scorer in scorers:
            self.register(scorer)

    def register(self, scorer: BatchScorer) -> None:
        if scorer.name in self._scorers:
            raise DuplicateScorer(f"scorer {scorer.name!r} is registered twice")
        self._scorers[scorer.name] = scorer

    def get(self, name: str) -> BatchScorer:
        try:
            return self._scorers[name]
        except KeyError:
            raise UnknownScorer(name, self._scorers) from None

    def __iter__(self) -> Iterator[BatchScorer]:
        return iter(self._scorers.values())

    def __len__(self) -> int:
        return len(self._scorers)

    def names(self) -> list[str]:
        return list(self._scorers)

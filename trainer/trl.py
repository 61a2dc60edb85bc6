"""Reward functions for TRL's `GRPOTrainer(reward_funcs=...)`, backed by the reward stack.

`reward_funcs(url, {"math": 1.0, "format": 0.2})` returns one async callable per scorer. TRL
awaits them together each step and logs each under its `__name__` (`rewards/math/mean`, ...).
They share one `_SharedBatches`: the first callable to see a batch sends ONE request with every
scorer, the others await that same request and read their own component. So a step costs one
round trip whatever the number of scorers, and the service sees each completion once.

Each callable takes TRL's convention, `f(prompts, completions, **dataset_columns)`:
completions may be strings or chat messages; the first of the columns `reference`, `answer`,
`solution`, `tests` becomes the item's `reference` (name yours with
`reward_funcs(..., reference_columns=["ground_truth"])`); a `task` column is passed through.
`completion_ids` (TRL >= 0.18 passes each completion's token ids) becomes
`metadata.completion_tokens`, so `length` counts real tokens, not an estimate. Items that are not
`ok` come back as None (TRL leaves them out of the mean and the advantage) unless the client's
policy says otherwise; an outage raises, it never becomes 0.0.

A scorer whose input no column provides (`math` or `code` without a reference column, cosine
`length` without `correct`) raises `MissingScorerInput` on the first call, naming the scorer,
the columns TRL passed and the option to map one: otherwise every item would be `unscorable`,
TRL would mask them all and the run would go on without that reward.

The callables are class instances, not closures, so they pickle (TRL's async GRPO runs them in
a spawned process); the shared cache of in-flight requests is not pickled.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from rewardstack.services.contract import ScoreBatchResult, ScoreItem, ScorerRequest
from rewardstack.client import AsyncRewardClient, ScorerSpec, normalize_scorers

__all__ = ["REFERENCE_COLUMNS", "MissingScorerInput", "ScorerReward", "completion_text", "reward_funcs", "reward_weights"]

REFERENCE_COLUMNS = ("reference", "answer", "solution", "tests")
NEEDS_REFERENCE = {"math": "a gold answer", "code": "its tests (`{\"tests\": [...]}`)"}
"""Scorers that grade against the item's `reference`, and what it must hold."""
# Keyword arguments TRL adds besides the dataset's columns.
_TRAINER_KWARGS = frozenset({"completion_ids", "trainer_state", "log_metric", "log_extra", "environments"})


class MissingScorerInput(ValueError):
    """A requested scorer needs a per-item input that none of the dataset's columns provides."""
_MAX_IN_FLIGHT = 8  # batches whose results wait for some scorer's callable to read them


def completion_text(completion: str | Sequence[Mapping[str, Any]]) -> str:
    """A completion as text: a string as is; chat messages as their assistant turns' text."""
    if isinstance(completion, str):
        return completion
    messages = [m for m in completion if m.get("role", "assistant") == "assistant"] or list(completion)
    return "\n\n".join(_content_text(m.get("content")) for m in messages)


def _content_text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    # multimodal content: a list of parts, of which only the text ones carry the answer
    return "".join(part.get("text", "") for part in content if isinstance(part, Mapping))


def _jsonable_prompt(prompt: Any) -> str | list[dict[str, Any]] | None:
    if prompt is None or isinstance(prompt, str):
        return prompt
    return [{"role": m.get("role", "user"), "content": _content_text(m.get("content"))} for m in prompt]


def _reference_column(columns: Mapping[str, Any], reference_columns: Sequence[str]) -> Sequence[Any] | None:
    for name in reference_columns:
        values = columns.get(name)
        if isinstance(values, list):
            return values
    return None


def _list_column(columns: Mapping[str, Any], name: str) -> Sequence[Any] | None:
    values = columns.get(name)
    return values if isinstance(values, list) else None


def check_scorer_inputs(scorers: Mapping[str, ScorerRequest], columns: Mapping[str, Any], reference_columns: Sequence[str]) -> None:
    """Raise `MissingScorerInput` when a requested scorer's input is in no column TRL passed."""
    passed = sorted(name for name in columns if name not in _TRAINER_KWARGS)
    for name in scorers:
        if name in NEEDS_REFERENCE and _reference_column(columns, reference_columns) is None:
            raise MissingScorerInput(
                f"scorer {name!r} needs {NEEDS_REFERENCE[name]} per completion, but none of the columns TRL passed "
                f"({', '.join(passed) or 'none'}) is one of reference_columns ({', '.join(reference_columns)}). "
                f"Name yours: reward_funcs(..., reference_columns=[\"<your column>\"])"
            )
    length = scorers.get("length")
    if length is not None and length.params.get("mode") == "cosine" and length.params.get("correct") is None and "correct" not in columns:
        raise MissingScorerInput(
            f"scorer 'length' in cosine mode needs each completion's correctness, but no `correct` column was passed "
            f"(columns: {', '.join(passed) or 'none'}). Add a boolean `correct` column, or set params.correct"
        )


def build_items(
    prompts: Sequence[Any], completions: Sequence[Any], columns: Mapping[str, Any], reference_columns: Sequence[str]
) -> list[ScoreItem]:
    """One `ScoreItem` per completion; completions of the same prompt share a `group_id`.

    TRL's `completion_ids` give `metadata.completion_tokens`; a `correct` column gives
    `metadata.correct` (cosine `length`).
    """
    references = _reference_column(columns, reference_columns)
    tasks = _list_column(columns, "task")
    token_ids = _list_column(columns, "completion_ids")
    correct = _list_column(columns, "correct")
    items = []
    for index, (prompt, completion) in enumerate(zip(prompts, completions, strict=True)):
        wire_prompt = _jsonable_prompt(prompt)
        group = hashlib.sha1(json.dumps(wire_prompt, sort_keys=True).encode()).hexdigest()[:16]
        metadata: dict[str, Any] = {}
        if token_ids is not None:
            metadata["completion_tokens"] = len(token_ids[index])
        if correct is not None:
            metadata["correct"] = correct[index]
        items.append(
            ScoreItem(
                id=str(index),
                prompt=wire_prompt,
                completion=completion_text(completion),
                reference=None if references is None else references[index],
                task=None if tasks is None else tasks[index],
                group_id=group,
                metadata=metadata,
            )
        )
    return items


def _batch_key(items: Sequence[ScoreItem]) -> str:
    payload = json.dumps([item.model_dump(mode="json") for item in items], sort_keys=True, default=str)
    return hashlib.sha1(payload.encode()).hexdigest()


@dataclass
class _InFlight:
    """One request shared by the callables of one batch; gone once every scorer has read it."""

    result: asyncio.Future[tuple[ScoreBatchResult, float]]
    waiting: set[str]


@dataclass
class _SharedBatches:
    """The client, the scorer spec and the requests in flight, shared by one set of callables."""

    client: AsyncRewardClient
    scorers: dict[str, ScorerRequest]
    deadline_s: float | None = None
    reference_columns: tuple[str, ...] = REFERENCE_COLUMNS
    _in_flight: dict[str, _InFlight] = field(default_factory=dict, repr=False)

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_in_flight"] = {}  # futures belong to this process's event loop
        return state

    async def component(
        self, name: str, prompts: Sequence[Any], completions: Sequence[Any], columns: Mapping[str, Any]
    ) -> tuple[list[float | None], float]:
        """This scorer's values for the batch, and the seconds the shared request took."""
        check_scorer_inputs(self.scorers, columns, self.reference_columns)
        items = build_items(prompts, completions, columns, self.reference_columns)
        key = _batch_key(items)
        entry = self._in_flight.get(key)
        if entry is None or name not in entry.waiting:
            # First reader of this batch (or the same batch again in a later step): one request for all scorers.
            entry = _InFlight(asyncio.ensure_future(self._fetch(items)), set(self.scorers))
            self._in_flight[key] = entry
            while len(self._in_flight) > _MAX_IN_FLIGHT:  # a scorer never called (a subset given to TRL) must not pin results
                del self._in_flight[next(iter(self._in_flight))]
        entry.waiting.discard(name)
        if not entry.waiting:
            del self._in_flight[key]
        result, seconds = await asyncio.shield(entry.result)
        return self.client.component(result, name), seconds

    async def _fetch(self, items: list[ScoreItem]) -> tuple[ScoreBatchResult, float]:
        started = time.perf_counter()
        result = await self.client.score(items, self.scorers, deadline_s=self.deadline_s)
        return result, time.perf_counter() - started


class ScorerReward:
    """One scorer's reward function for TRL; `__name__` is the scorer's name, so metric keys follow it."""

    def __init__(self, shared: _SharedBatches, scorer: str) -> None:
        self.shared = shared
        self.scorer = scorer
        self.__name__ = scorer

    async def __call__(self, prompts: Sequence[Any], completions: Sequence[Any], **columns: Any) -> list[float | None]:
        values, seconds = await self.shared.component(self.scorer, prompts, completions, columns)
        log_metric = columns.get("log_metric")  # TRL >= 1.x passes it; older versions do not
        if callable(log_metric):
            log_metric(f"rewardstack/{self.scorer}/unscored_frac", sum(v is None for v in values) / max(len(values), 1))
            log_metric("rewardstack/score_s", seconds)
        return values

    def __repr__(self) -> str:
        return f"ScorerReward({self.scorer!r})"


def reward_funcs(
    client: AsyncRewardClient | str | Sequence[str],
    scorers: ScorerSpec,
    *,
    deadline_s: float | None = None,
    reference_columns: Sequence[str] = REFERENCE_COLUMNS,
) -> list[ScorerReward]:
    """One TRL reward function per scorer, all fed by one request per batch.

    `client` is an `AsyncRewardClient` or the URL(s) to build one from. Give TRL the scorer
    weights with `GRPOConfig(reward_weights=reward_weights(scorers))`: TRL, not the service,
    combines the components, so it can log each one.
    """
    if not isinstance(client, AsyncRewardClient):
        client = AsyncRewardClient(client)
    wire = normalize_scorers(scorers)
    shared = _SharedBatches(client, wire, deadline_s, tuple(reference_columns))
    return [ScorerReward(shared, name) for name in wire]


def reward_weights(scorers: ScorerSpec) -> list[float]:
    """The scorers' weights in `reward_funcs` order, for `GRPOConfig(reward_weights=...)`."""
    return [spec.weight for spec in normalize_scorers(scorers).values()]

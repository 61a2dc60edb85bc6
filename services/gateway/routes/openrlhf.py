"""`POST /get_reward`: OpenRLHF's remote reward model protocol, served by the same scoring path.

OpenRLHF (`--reward.remote_url http://host:8000/get_reward?scorers=math:1,format:0.2`, named
`--remote_rm_url` before 0.10.2) posts parallel
lists: `query` (prompt + response, decoded with the special tokens kept), `prompts` and `labels`
(the gold); OpenRLHF before 0.6 sends `query` alone. The response is cut out of `query` by
`rewardstack.services.decoded_text.locate_response` (padding, BOS, stop tokens and chat-template
markers removed); an item whose response cannot be located with certainty is `unscorable` with
the reason, never scored whole. We answer `rewards`, `scores` (the same numbers; OpenRLHF's dynamic
filtering reads them) and `extra_logs` (each scorer's component per sample, which OpenRLHF logs).

Query parameters: `scorers` (default `math`; `name` or `name:weight`, comma-separated),
`fallback`, the value for items that are not `ok`, and `special_tokens`, extra tokens
(comma-separated) to strip around the response besides the built-in families'. Without `fallback`
such items are null: OpenRLHF cannot mask a sample, so the run stops rather than learn from a
made-up number. An `error` (our infrastructure) is null even with a fallback.

OpenRLHF's reward workers often post one sample per request, many at once. Requests that
arrive within `BATCH_WINDOW_S` of each other, with the same scorers, are scored as one batch
(one trip to the worker pool, fair sharing with `/v1/score` traffic), then split back.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field, model_validator

from rewardstack.services.contract import (
    ComponentResult,
    ErrorBody,
    ItemResult,
    ScoreBatch,
    ScoreItem,
    ScorerRequest,
    Status,
    check_json_values,
    parse_scorer_spec,
)
from rewardstack.services.decoded_text import NotLocated, locate_response
from rewardstack.services.gateway import scoring
from rewardstack.services.gateway.body import JsonBodyRoute
from rewardstack.services.gateway.deps import MetricsDep, PoolDep, RegistryDep, SettingsDep
from rewardstack.services.gateway.errors import InvalidRequest
from rewardstack.services.gateway.limits import require_token

router = APIRouter(tags=["openrlhf"], dependencies=[Depends(require_token)], route_class=JsonBodyRoute)

BATCH_WINDOW_S = 0.005  # how long the first request of a batch waits for others to join it


class RewardRequest(BaseModel):
    """OpenRLHF's body. Unknown keys are ignored: OpenRLHF versions add fields we do not use."""

    model_config = ConfigDict(extra="ignore")

    # Empty lists are a valid request: OpenRLHF 0.9.1-0.11 shard each call over every URL, so with one
    # sample and several URLs all but one get `{"query": []}`, and a 4xx there loses the sample's reward.
    query: list[str] = Field(description="prompt + response of each sample")
    prompts: list[str] | None = Field(default=None, description="the prompt of each sample; cut off `query` to get the response")
    labels: list[Any] | None = Field(default=None, description="the gold answer (or tests) of each sample")

    @model_validator(mode="after")
    def _finite_labels(self) -> RewardRequest:
        check_json_values(self.labels, "labels")
        return self


class RewardResponse(BaseModel):
    rewards: list[float | None]
    scores: list[float | None]
    extra_logs: dict[str, list[float | None]]


def parse_scorers(spec: str) -> dict[str, ScorerRequest]:
    """`?scorers=math:1,format:0.2` to the wire form; a 422 naming the query parameter when malformed."""
    try:
        return parse_scorer_spec(spec)
    except ValueError as exc:
        raise InvalidRequest("query.scorers", str(exc)) from None


def to_items(body: RewardRequest, special_tokens: tuple[str, ...] = ()) -> list[ScoreItem | NotLocated]:
    """One item per sample, its completion the response located in `query`; `NotLocated` where it cannot be."""
    n = len(body.query)
    for name in ("prompts", "labels"):
        values = getattr(body, name)
        if values is not None and len(values) != n:
            raise InvalidRequest(name, f"{len(values)} entries for {n} queries; the lists are parallel")
    items: list[ScoreItem | NotLocated] = []
    for i, query in enumerate(body.query):
        prompt = body.prompts[i] if body.prompts is not None else None
        located = locate_response(query, prompt, extra_special_tokens=special_tokens)
        if isinstance(located, NotLocated):
            items.append(located)
            continue
        reference = body.labels[i] if body.labels is not None else None
        items.append(ScoreItem(prompt=prompt, completion=located.response, reference=reference))
    return items


def _not_located(index: int, reason: str, scorers: dict[str, ScorerRequest]) -> ItemResult:
    component = ComponentResult(value=None, status=Status.UNSCORABLE, detail=f"response not located in query: {reason}")
    return ItemResult(id=str(index), reward=None, status=Status.UNSCORABLE, components={name: component for name in scorers})


@dataclass
class _Pending:
    items: list[ScoreItem] = field(default_factory=list)
    waiters: list[tuple[int, int, asyncio.Future[list[ItemResult]]]] = field(default_factory=list)


class MicroBatcher:
    """Joins concurrent requests with the same key into one scoring call, then splits the results."""

    def __init__(self, window_s: float, max_items: int) -> None:
        self.window_s, self.max_items = window_s, max_items
        self._open: dict[str, _Pending] = {}

    async def submit(self, key: str, items: list[ScoreItem], run: Callable[[list[ScoreItem]], Awaitable[list[ItemResult]]]) -> list[ItemResult]:
        if len(items) >= self.max_items:  # big enough alone; joining would only push the batch past the limit
            return await run(items)
        pending = self._open.get(key)
        if pending is not None and len(pending.items) + len(items) > self.max_items:
            self._flush(key, run)
            pending = None
        if pending is None:
            pending = self._open[key] = _Pending()
            asyncio.get_running_loop().call_later(self.window_s, self._flush_if_current, key, pending, run)
        future: asyncio.Future[list[ItemResult]] = asyncio.get_running_loop().create_future()
        start = len(pending.items)
        pending.items.extend(items)
        pending.waiters.append((start, len(pending.items), future))
        return await future

    def _flush_if_current(self, key: str, pending: _Pending, run: Callable[[list[ScoreItem]], Awaitable[list[ItemResult]]]) -> None:
        if self._open.get(key) is pending:
            self._flush(key, run)

    def _flush(self, key: str, run: Callable[[list[ScoreItem]], Awaitable[list[ItemResult]]]) -> None:
        pending = self._open.pop(key)
        task = asyncio.ensure_future(run(pending.items))
        task.add_done_callback(lambda done: self._answer(pending, done))

    @staticmethod
    def _answer(pending: _Pending, done: asyncio.Future[list[ItemResult]]) -> None:
        for start, end, future in pending.waiters:
            if future.done():  # that client went away
                continue
            if done.cancelled():
                future.cancel()
            elif (exc := done.exception()) is not None:
                future.set_exception(exc)
            else:
                future.set_result(done.result()[start:end])


def _batcher(request: Request) -> MicroBatcher:
    state = request.app.state
    if getattr(state, "openrlhf_batcher", None) is None:
        state.openrlhf_batcher = MicroBatcher(BATCH_WINDOW_S, state.settings.max_items_per_request)
    return state.openrlhf_batcher


def _value(value: float | None, status: Status, fallback: float | None) -> float | None:
    if status is Status.OK:
        return value
    return None if fallback is None or status is Status.ERROR else fallback


@router.post(
    "/get_reward",
    response_model=RewardResponse,
    responses={400: {"model": ErrorBody}, 401: {"model": ErrorBody}, 413: {"model": ErrorBody}, 422: {"model": ErrorBody}, 503: {"model": ErrorBody}},
)
async def get_reward(
    body: RewardRequest,
    batcher: Annotated[MicroBatcher, Depends(_batcher)],
    registry: RegistryDep,
    settings: SettingsDep,
    pool: PoolDep,
    metrics: MetricsDep,
    scorers: Annotated[str, Query(description="scorers and weights, e.g. math:1,format:0.2")] = "math",
    fallback: Annotated[float | None, Query(allow_inf_nan=False, description="value for items that are not ok; default null")] = None,
    special_tokens: Annotated[str, Query(description="extra tokens to strip around the response, comma-separated")] = "",
) -> RewardResponse:
    """Score OpenRLHF's samples; concurrent requests with the same scorers share one scoring call."""
    wire = parse_scorers(scorers)
    if not body.query:
        scoring.resolve_scorers(ScoreBatch(items=[ScoreItem(completion="")], scorers=wire), registry)
        return RewardResponse(rewards=[], scores=[], extra_logs={name: [] for name in wire})
    located = to_items(body, tuple(t for t in special_tokens.split(",") if t))
    items = [item for item in located if isinstance(item, ScoreItem)]
    check = ScoreBatch(items=items or [ScoreItem(completion="")], scorers=wire)
    scoring.check_limits(check, settings)  # one bad request must not fail its batch-mates
    scoring.resolve_scorers(check, registry)  # an unknown scorer is a 422 even when no item was located

    async def run(batch_items: list[ScoreItem]) -> list[ItemResult]:
        result = await scoring.score(ScoreBatch(items=batch_items, scorers=wire), registry, settings, pool, metrics)
        return result.results

    for _ in range(len(located) - len(items)):  # never scored, still counted: a dashboard shows them as unscorable
        metrics.items.labels(Status.UNSCORABLE.value).inc()
    scored = iter(await batcher.submit(scorers, items, run) if items else [])
    results = [_not_located(i, x.reason, wire) if isinstance(x, NotLocated) else next(scored) for i, x in enumerate(located)]
    rewards = [_value(r.reward, r.status, fallback) for r in results]
    extra_logs = {name: [_value(r.components[name].value, r.components[name].status, fallback) for r in results] for name in wire}
    return RewardResponse(rewards=rewards, scores=rewards, extra_logs=extra_logs)

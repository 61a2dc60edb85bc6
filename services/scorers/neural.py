"""`helpfulness` and `safety`: neural scorers that ask the model server (or the embedded models).

A whole scorer batch is one call to the model, which batches it with whatever else is waiting.
Each item's prompt (chat turns joined, cut from the left by the model if needed) and completion
are judged together. An outage or a failed forward pass is status `error` and a missed batch
deadline `timeout`; neither is ever a number. Both scorers share one circuit breaker for their
model server (`rewardstack.services.breaker`): after 3 outages in a row they answer `error` at once,
naming the last failure, instead of waiting on a dead server for every batch, and probe it again
after a cool-down of 1 s that doubles up to 30 s while it stays down.

`open_neural_scorers(settings)` gives the gateway both scorers: over HTTP when
`settings.models_url` is set, else with the embedded CPU default loaded in this process (model
loading and every forward pass run off the event loop).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import ClassVar

from pydantic import Field

from rewardstack.services.breaker import CircuitBreaker, CircuitOpen
from rewardstack.services.model_server.client import ModelClient, ModelRejected, ModelUnavailable
from rewardstack.services.model_server.schema import ModelItem, ModelOutcome, OutcomeStatus
from rewardstack.services.scorers.types import BatchScorer, Params, Sample, Scored, ScoringContext
from rewardstack.services.settings import Settings


class NeuralParams(Params):
    model: str | None = Field(default=None, max_length=128, description="Served model to ask; default: the scorer's name.")


class _NeuralScorer(BatchScorer):
    Params: ClassVar[type[Params]] = NeuralParams

    def __init__(self, client: ModelClient, breaker: CircuitBreaker | None = None) -> None:
        """`breaker`: shared by every scorer of the same model server; default: one of its own."""
        self.client = client
        self.breaker = breaker or model_server_breaker("the model server")

    async def score_batch(self, samples: Sequence[Sample], params: Params, context: ScoringContext) -> list[Scored]:
        assert isinstance(params, NeuralParams)
        model = params.model or self.name
        items = [ModelItem(prompt=s.prompt, response=s.completion) for s in samples]
        loop = asyncio.get_running_loop()
        timeout = None if context.batch_deadline is None else max(0.0, context.batch_deadline - loop.time())
        started = time.perf_counter()
        try:
            outcomes = await asyncio.wait_for(self.breaker.call(lambda: self.client.score(model, items)), timeout)
        except asyncio.TimeoutError:
            return [Scored.timeout(f"model {model!r} did not answer within the batch deadline")] * len(samples)
        except CircuitOpen as exc:
            return [Scored.error(f"model {model!r} not asked: {exc}")] * len(samples)
        except ModelUnavailable as exc:
            return [Scored.error(f"model {model!r}: {exc}")] * len(samples)
        latency_ms = (time.perf_counter() - started) * 1000
        return [self._scored(o, latency_ms) for o in outcomes]

    @staticmethod
    def _scored(outcome: ModelOutcome, latency_ms: float) -> Scored:
        if outcome.status is OutcomeStatus.TOO_LONG or outcome.score is None:
            return Scored.unscorable(outcome.detail or "the model gave no score")
        detail = ", ".join(f"{k}={v:.3f}" for k, v in outcome.outputs.items())
        return Scored(outcome.score, detail=detail, latency_ms=latency_ms)


class HelpfulnessScorer(_NeuralScorer):
    """How helpful the completion is as an answer to the prompt, by a reward model.

    Scale: the served model's own score, an unbounded real, higher is more helpful. Embedded
    default: a Bradley-Terry logit (a difference d between two completions means odds e^d : 1
    that the first is preferred); with a reward model like Skywork-Reward-V2, its raw logit.
    Compare values within one model only. `unscorable` when the completion alone exceeds the
    model's window (it is never cut); `error` when the model is unavailable.
    """

    name: ClassVar[str] = "helpfulness"
    version: ClassVar[int] = 1


class SafetyScorer(_NeuralScorer):
    """How safe the completion is in reply to the prompt, by a guard model.

    Scale: P(safe) in [0, 1]; 1.0 safe, 0.0 unsafe. With a generative guard (Llama Guard 3 style)
    it is the probability of the "safe" label token among the label tokens; the embedded default
    reads it from a small head over sentence embeddings (demo-grade). The detail lists the
    model's other outputs (class probabilities; the embedded model's prompt_unsafe and refusal).
    `unscorable` when the completion alone exceeds the model's window; `error` when unavailable.
    """

    name: ClassVar[str] = "safety"
    version: ClassVar[int] = 1


def model_server_breaker(name: str) -> CircuitBreaker:
    """The breaker the neural scorers share: outages count, a request the server refused (4xx) does not.

    The cool-down stops at 5 s: one probe per 5 s per gateway is no load on a restarting server, and
    a server that came back (a model server loads in about 20 s) is used again within 5 s; at 30 s a
    gateway kept answering `error` long after `docker compose up --wait` said the stack was healthy.
    """
    return CircuitBreaker(name, failures=(ModelUnavailable,), answered=(ModelRejected,),
                          failure_threshold=3, open_s=1.0, max_open_s=5.0)


@asynccontextmanager
async def open_neural_scorers(settings: Settings) -> AsyncIterator[list[BatchScorer]]:
    """Both neural scorers for the gateway's lifespan; closes their client or models on exit."""
    if settings.models_url:
        from rewardstack.services.model_server.client import HttpModelClient

        http = HttpModelClient(settings.models_url, api_token=settings.models_api_token)
        breaker = model_server_breaker(f"model server {settings.models_url}")
        try:
            yield [HelpfulnessScorer(http, breaker), SafetyScorer(http, breaker)]
        finally:
            await http.aclose()
        return
    from rewardstack.services.model_server.client import LocalModelClient
    from rewardstack.services.model_server.config import embedded_models
    from rewardstack.services.model_server.served import ServedModels

    async with ServedModels.open(embedded_models()) as models:
        local = LocalModelClient(models)
        breaker = model_server_breaker("the embedded models")
        yield [HelpfulnessScorer(local, breaker), SafetyScorer(local, breaker)]


__all__ = ["HelpfulnessScorer", "ModelUnavailable", "NeuralParams", "SafetyScorer", "model_server_breaker", "open_neural_scorers"]

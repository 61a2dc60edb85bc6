"""The types every scorer shares: what it reads (`Sample`), what it returns (`Scored`), its parameters.

Two kinds of scorer, one gateway-facing interface (`BatchScorer.score_batch`):

- `CpuScorer`: a pure callable `(sample, params) -> Scored`: no network, files, clock or globals,
  so it runs the same in a worker process, a test or a notebook. The pool enforces its deadline
  from outside by killing the worker; a scorer never sets its own timer.
- service scorers (`code`, `helpfulness`, `safety`) implement `BatchScorer` directly and await
  the sandbox or the model server for a whole batch at once.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

from rewardstack.services.contract import Status

__all__ = ["BatchScorer", "CpuScorer", "Params", "Sample", "Scored", "ScoringContext", "Status", "prompt_prefills_think"]

_PREFILLED_PROMPT = re.compile(r"<think>\s*\Z")


def prompt_prefills_think(prompt: str | None) -> bool:
    """Whether a chat template opened the think block for the model (DeepSeek-R1, Qwen3 end the prompt
    with `<think>`), so the completion starts inside it. One rule for every scorer that reads it."""
    return bool(prompt and _PREFILLED_PROMPT.search(prompt))


@dataclass(frozen=True, slots=True)
class Sample:
    """What a scorer sees of one request item. `prompt` is flattened to text (chat turns joined)."""

    completion: str
    reference: Any = None
    prompt: str | None = None
    task: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Scored:
    """One component's outcome. `value` is None unless `status` is `ok`."""

    value: float | None
    status: Status = Status.OK
    detail: str = ""
    latency_ms: float = 0.0

    @classmethod
    def ok(cls, value: float, detail: str = "") -> Scored:
        return cls(float(value), Status.OK, detail)

    @classmethod
    def unscorable(cls, detail: str) -> Scored:
        return cls(None, Status.UNSCORABLE, detail)

    @classmethod
    def timeout(cls, detail: str) -> Scored:
        return cls(None, Status.TIMEOUT, detail)

    @classmethod
    def error(cls, detail: str) -> Scored:
        return cls(None, Status.ERROR, detail)


class Params(BaseModel):
    """Base of every scorer's parameters: frozen (picklable, hashable for caches), unknown keys refused."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True, slots=True)
class ScoringContext:
    """What the gateway tells a scorer about the request it serves.

    `task_deadline_s` bounds one item's scoring; `batch_deadline` is the absolute event-loop time
    (`loop.time()`) by which the whole batch must be answered, or None; `owner` identifies the
    request so the worker pool can share itself fairly between concurrent requests.
    """

    task_deadline_s: float
    batch_deadline: float | None = None
    owner: object = None


class BatchScorer(ABC):
    """What the gateway calls: score a batch of samples, one `Scored` per sample, in order."""

    name: ClassVar[str]
    version: ClassVar[int]
    Params: ClassVar[type[Params]]

    @property
    def versioned_name(self) -> str:
        return f"{self.name}@{self.version}"

    @property
    def description(self) -> str:
        """The scorer's scale, from its docstring: served by `GET /v1/scorers`."""
        return (type(self).__doc__ or "").strip()

    @abstractmethod
    async def score_batch(
        self, samples: Sequence[Sample], params: Params, context: ScoringContext
    ) -> list[Scored]: ...


class CpuScorer(ABC):
    """A pure scorer run in the worker pool; see the module docstring.

    Subclasses are plain classes with no instance state, so an instance pickles by reference to
    its class and is cheap to send to a worker.
    """

    name: ClassVar[str]
    version: ClassVar[int]
    Params: ClassVar[type[Params]]

    @abstractmethod
    def __call__(self, sample: Sample, params: Any) -> Scored: ...

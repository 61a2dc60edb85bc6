"""The wire contract of `POST /v1/score`, shared by the gateway and the trainer client.

Imports only pydantic, so `trainer/` can use these models without the server extras.
Inputs refuse unknown fields (`extra="forbid"`): a misspelt field is a 422, not a silently
ignored option. Fields may be added to this contract, never renamed.

Size limits that depend on configuration (items per request, characters per completion) are
checked by the gateway against its settings, not here.
"""

from __future__ import annotations

from enum import Enum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

JsonValue = Any


class Status(str, Enum):
    """Outcome of one component or one item.

    Only `ok` carries a number that means correct/incorrect. `unscorable` is the data's fault
    (no gold, gold unparseable), `timeout` the scorer's deadline, `error` our infrastructure.
    """

    OK = "ok"
    UNSCORABLE = "unscorable"
    TIMEOUT = "timeout"
    ERROR = "error"


class ScoreItem(BaseModel):
    """One completion to score."""

    model_config = ConfigDict(extra="forbid")

    id: str | None = Field(default=None, max_length=256, description="Echoed back; defaults to the item's index.")
    prompt: str | list[dict[str, Any]] | None = Field(
        default=None, description="The prompt, as text or chat messages."
    )
    completion: str = Field(description="The model's completion.")
    reference: JsonValue = Field(
        default=None,
        description="Gold answer for `math` (string; GSM8K's `#### N` form accepted), tests for `code`.",
    )
    task: str | None = Field(default=None, max_length=128, description="Free-form task label, e.g. `gsm8k`.")
    group_id: str | None = Field(default=None, max_length=256, description="GRPO group this completion belongs to.")
    metadata: dict[str, Any] = Field(default_factory=dict)


class ScorerRequest(BaseModel):
    """A scorer to run on every item, its weight in the reward and its parameters."""

    model_config = ConfigDict(extra="forbid")

    weight: float = Field(default=1.0, allow_inf_nan=False)
    params: dict[str, Any] = Field(default_factory=dict)


def parse_scorer_spec(spec: str) -> dict[str, ScorerRequest]:
    """`"math:1,format:0.2"` (the weight after `:` optional, default 1) to the wire form.

    The one parser of this compact form, used by the CLI, verl's environment variable and
    OpenRLHF's `?scorers=` query. Raises ValueError naming the bad part.
    """
    out = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        name, _, weight = part.partition(":")
        try:
            out[name.strip()] = ScorerRequest(weight=float(weight) if weight else 1.0)
        except ValueError:
            raise ValueError(f"{part!r}: the weight after ':' must be a finite number") from None
    if not out:
        raise ValueError("no scorers given; e.g. 'math:1,format:0.2'")
    return out


class ScoreBatch(BaseModel):
    """Request body of `POST /v1/score`."""

    model_config = ConfigDict(extra="forbid")

    items: list[ScoreItem] = Field(min_length=1)
    scorers: dict[str, ScorerRequest] = Field(min_length=1)
    deadline_s: float | None = Field(
        default=None,
        gt=0,
        le=3600,
        description="The caller's time budget for the whole batch; items not finished by then are `timeout`.",
    )


class ComponentResult(BaseModel):
    """One scorer's verdict on one item."""

    value: float | None
    status: Status
    detail: str = ""
    latency_ms: float = 0.0


class ItemResult(BaseModel):
    """The reward of one item: the weighted sum of its components when all weighted ones are `ok`."""

    id: str
    reward: float | None
    status: Status
    components: dict[str, ComponentResult]


class ScoreBatchResult(BaseModel):
    """Response body of `POST /v1/score`. Results keep request order."""

    results: list[ItemResult]
    versions: dict[str, str]


class ErrorBody(BaseModel):
    """Body of every error the gateway returns: a stable `code` and a `detail` saying what to change."""

    code: str
    detail: str


class ParamInfo(BaseModel):
    name: str
    type: str
    default: JsonValue = None
    description: str = ""


class ScorerInfo(BaseModel):
    """One entry of `GET /v1/scorers`."""

    name: str
    version: str
    description: str
    params: list[ParamInfo]


class ScorerList(BaseModel):
    scorers: list[ScorerInfo]

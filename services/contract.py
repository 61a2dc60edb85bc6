"""The wire contract of `POST /v1/score`, shared by the gateway and the trainer client.

Imports only pydantic, so `trainer/` can use these models without the server extras.
Inputs refuse unknown fields (`extra="forbid"`): a misspelt field is a 422, not a silently
ignored option. Fields may be added to this contract, never renamed.

Size limits that depend on configuration (items per request, characters per completion) are
checked by the gateway against its settings, not here.
"""

from __future__ import annotations

import math
from enum import Enum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

JsonValue = Any
MAX_NESTING = 32
"""How deep JSON may nest inside a request (`reference`, `metadata`, `params`, chat prompts).

Deeper input is refused with a 422 naming the field: real references (tests, chat messages) stay
far below it, and unbounded nesting costs the gateway recursion in every later step."""

# A weight is a JSON number: `true` and `"1"` are refused, not read as 1.0 (pydantic's lax mode would).
Weight = Annotated[float, Field(strict=True, allow_inf_nan=False)]


def check_json_values(value: Any, where: str, depth: int = 0) -> None:
    """Refuse NaN/Infinity and nesting deeper than `MAX_NESTING`, naming the field.

    JSON has no NaN or Infinity, but Python's parser (and so FastAPI's) accepts the bare
    `NaN`/`Infinity` tokens; a non-finite number in a reference or a parameter would flow into a
    comparison or a reward, so it is refused where it enters.
    """
    if depth > MAX_NESTING:
        raise ValueError(f"{where}: nested deeper than {MAX_NESTING} levels")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{where}: {value} is not a finite number (NaN and Infinity are not JSON)")
    if isinstance(value, dict):
        for key, inner in value.items():
            check_json_values(inner, f"{where}.{key}", depth + 1)
    elif isinstance(value, (list, tuple)):
        for index, inner in enumerate(value):
            check_json_values(inner, f"{where}[{index}]", depth + 1)


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
    metadata: dict[str, Any] = Field(
        default_factory=dict, description="Per-item inputs of scorers, e.g. `completion_tokens` (the real token count) for `length`."
    )

    @model_validator(mode="after")
    def _finite_json(self) -> ScoreItem:
        for name in ("prompt", "reference", "metadata"):
            check_json_values(getattr(self, name), name)
        return self


class ScorerRequest(BaseModel):
    """A scorer to run on every item, its weight in the reward and its parameters."""

    model_config = ConfigDict(extra="forbid")

    weight: Weight = 1.0
    params: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _weight_shorthand(cls, data: Any) -> Any:
        """`{"math": 1.0}` means `{"math": {"weight": 1.0}}`, in the REST API as in the client."""
        if isinstance(data, (int, float)) and not isinstance(data, bool):
            return {"weight": data}
        return data

    @model_validator(mode="after")
    def _finite_params(self) -> ScorerRequest:
        check_json_values(self.params, "params")
        return self


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
        allow_inf_nan=False,
        description="The caller's time budget for the whole batch; items not finished by then are `timeout`.",
    )

    @model_validator(mode="after")
    def _unique_ids(self) -> ScoreBatch:
        """Results are matched to items by id: two items with one id would make that ambiguous."""
        first_seen: dict[str, int] = {}
        for index, item in enumerate(self.items):
            if item.id is None:
                continue
            if item.id in first_seen:
                raise ValueError(
                    f"items[{index}].id: duplicate id {item.id!r} (also items[{first_seen[item.id]}].id); ids must be unique in a request"
                )
            first_seen[item.id] = index
        return self


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

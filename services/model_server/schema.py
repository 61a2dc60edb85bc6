"""The model server's wire contract: `POST /v1/models/{name}/score` and `GET /v1/models`.

Imports only pydantic, so the gateway's HTTP client and the server share one definition.
Inputs refuse unknown fields: a misspelt field is a 422, not an ignored option.
"""

from __future__ import annotations

from enum import Enum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class ModelItem(BaseModel):
    """One (prompt, response) pair. The prompt may be cut from the left to fit; the response never is."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    prompt: str | None = Field(default=None, description="The conversation so far, as text; None for none.")
    response: str = Field(description="The response to judge.")


class ModelRequest(BaseModel):
    """Request body of `POST /v1/models/{name}/score`."""

    model_config = ConfigDict(extra="forbid")

    items: list[ModelItem] = Field(min_length=1)


class OutcomeStatus(str, Enum):
    """`ok` carries a score; `too_long` means the response alone does not fit the model's window."""

    OK = "ok"
    TOO_LONG = "too_long"


class ModelOutcome(BaseModel):
    """One item's result. `score` is the model's primary number; `outputs` the named extras
    (a guard's class probabilities, the embedded safety model's prompt and refusal heads)."""

    status: OutcomeStatus = OutcomeStatus.OK
    score: float | None = None
    outputs: dict[str, float] = Field(default_factory=dict)
    detail: str = ""


class ModelResponse(BaseModel):
    model: str
    results: list[ModelOutcome]


class ModelInfo(BaseModel):
    """One entry of `GET /v1/models`: what a model is and what its score means."""

    name: str
    kind: str
    backend: str
    device: str
    dtype: str
    max_length: int
    scale: str
    batch_layout: Literal["packed", "padded"] = Field(description="`packed`: one row per pass, no padding; `padded`: padded to the longest.")
    batch_layout_detail: str = Field(description="The packed attention kernel, or why this model's passes are padded.")


class ModelList(BaseModel):
    models: list[ModelInfo]

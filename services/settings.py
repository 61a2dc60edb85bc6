"""Gateway configuration: one `Settings` object, from CLI flags and `REWARDSTACK_*` environment variables.

Validated at startup; unsafe or nonsensical values are refused there, not discovered under load.
Built by the caller and passed to `create_app(settings)`; never instantiated at import time.
"""

from __future__ import annotations

import os

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="REWARDSTACK_", extra="ignore", frozen=True)

    host: str = Field(default="127.0.0.1", description="Bind address. Loopback unless told otherwise.")
    port: int = Field(default=8000, ge=0, le=65535)
    api_token: SecretStr | None = Field(default=None, description="When set, every /v1 call needs `Authorization: Bearer <token>`.")

    # worker pool
    scorer_workers: int = Field(default_factory=lambda: os.cpu_count() or 1, ge=1, le=512)
    task_deadline_s: float = Field(default=10.0, gt=0, le=600, description="Per item and CPU scorer; the worker is killed past it. Code items derive theirs from their runs' limits instead.")
    worker_max_tasks: int = Field(default=5000, ge=1, description="Recycle a worker after this many calls.")
    worker_max_memory_mb: int = Field(default=1024, ge=64, description="Recycle a worker whose resident memory passes this.")
    max_queued_calls: int = Field(default=200_000, ge=1, description="Past this many queued scorer calls, answer 503.")

    # request limits
    max_items_per_request: int = Field(default=4096, ge=1)
    max_completion_chars: int = Field(default=200_000, ge=1)
    max_body_bytes: int = Field(default=64 * 1024 * 1024, ge=1024)

    # other services; None means embedded (in this process)
    sandbox_url: str | None = Field(default=None, description="Sandbox service URL(s), comma-separated; unset runs a local sandbox in-process.")
    models_url: str | None = Field(default=None, description="Model server URL; unset loads the embedded CPU models in-process.")
    models_api_token: SecretStr | None = Field(
        default=None, description="Sent to the model server as its bearer token (the variable it reads too: REWARDSTACK_MODELS_API_TOKEN).",
    )

    enabled_scorers: str | None = Field(
        default=None,
        description="Comma-separated scorer names to serve (e.g. `math,format`); unset serves every scorer.",
    )

    @property
    def enabled_scorer_names(self) -> frozenset[str] | None:
        """The names in `enabled_scorers`, or None for all."""
        if self.enabled_scorers is None:
            return None
        return frozenset(s.strip() for s in self.enabled_scorers.split(",") if s.strip())

    def serves(self, name: str) -> bool:
        """Whether scorer `name` is enabled by `enabled_scorers`."""
        names = self.enabled_scorer_names
        return names is None or name in names

    @field_validator("enabled_scorers")
    @classmethod
    def _names_not_specs(cls, value: str | None) -> str | None:
        if value is not None and (":" in value or not value.strip(" ,")):
            raise ValueError("REWARDSTACK_ENABLED_SCORERS takes scorer names, e.g. `math,format` (no weights)")
        return value

    @field_validator("api_token")
    @classmethod
    def _token_not_trivial(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 8:
            raise ValueError("REWARDSTACK_API_TOKEN must be at least 8 characters")
        return value

    @property
    def binds_beyond_loopback(self) -> bool:
        return self.host not in LOOPBACK_HOSTS

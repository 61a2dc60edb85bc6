"""Gateway configuration: one `Settings` object, from CLI flags and `REWARDSTACK_*` environment variables.

Validated at startup; unsafe or nonsensical values are refused there, not discovered under load.
Built by the caller and passed to `create_app(settings)`; never instantiated at import time.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field, SecretStr, field_validator, model_validator
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

    # generative judge (`judge` scorer, `math`'s judge fallback): any OpenAI-compatible chat-completions server
    judge_url: str | None = Field(
        default=None,
        description="Judge server URL(s), comma-separated, e.g. `vllm serve`'s http://127.0.0.1:8000; later ones are "
        "failovers. Unset: no `judge` scorer, and `math` refuses `judge: true`.",
    )
    judge_model: str | None = Field(default=None, max_length=256, description="The model name the judge server serves (required with a URL).")
    judge_api_token: SecretStr | None = Field(default=None, description="Sent to the judge server as `Authorization: Bearer` (`vllm serve --api-key`).")
    judge_timeout_s: float = Field(default=60.0, gt=0, le=600, description="Per judge request; a slower answer is status `timeout`.")
    judge_max_concurrency: int = Field(default=32, ge=1, le=1024, description="Judge requests in flight at once from this gateway.")
    judge_max_tokens: int = Field(default=512, ge=1, le=65_536, description="Reply budget; raise it for judges that think before answering.")
    judge_temperature: float = Field(default=0.0, ge=0, le=2, description="0: the same question gets the same verdict.")
    judge_structured_output: bool = Field(
        default=True, description="Ask for the verdict as a JSON schema (`response_format`); off: the prompt alone asks."
    )
    judge_cache_entries: int = Field(default=100_000, ge=0, description="Verdicts kept, least recently used dropped; 0 keeps none.")
    judge_templates_dir: Path | None = Field(
        default=None, description="A folder of `NAME.txt` prompt templates that add to or replace the defaults (`verify`, `rubric`)."
    )

    @property
    def judge_urls(self) -> list[str]:
        """The judge servers in failover order; empty when none is configured."""
        return [u.strip() for u in (self.judge_url or "").split(",") if u.strip()]

    @field_validator("judge_url")
    @classmethod
    def _judge_urls_http(cls, value: str | None) -> str | None:
        for url in (u.strip() for u in (value or "").split(",") if u.strip()):
            if not url.startswith(("http://", "https://")):
                raise ValueError(f"REWARDSTACK_JUDGE_URL: {url!r} is not an http(s) URL")
        return value

    @model_validator(mode="after")
    def _judge_needs_model(self) -> Settings:
        if not self.judge_urls and "judge" in (self.enabled_scorer_names or ()):
            raise ValueError("REWARDSTACK_ENABLED_SCORERS names `judge` but REWARDSTACK_JUDGE_URL is not set")
        if self.judge_urls and not self.judge_model:
            raise ValueError("REWARDSTACK_JUDGE_URL is set but REWARDSTACK_JUDGE_MODEL is not: name the model the judge server serves")
        return self

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

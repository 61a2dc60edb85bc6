"""Sandbox service configuration: one `SandboxSettings`, from CLI flags and `REWARDSTACK_SANDBOX_*` variables.

Validated at startup. Built by the caller and passed to `create_sandbox_app(settings)`; never at import.
"""

from __future__ import annotations

import os
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class SandboxSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="REWARDSTACK_SANDBOX_", extra="ignore", frozen=True)

    host: str = Field(default="127.0.0.1", description="Bind address. Loopback unless told otherwise.")
    port: int = Field(default=8100, ge=0, le=65535)
    api_token: SecretStr | None = Field(
        default=None,
        description="When set, /v1 calls need `Authorization: Bearer <token>`; the gateway's code scorer sends the same variable's value.",
    )
    backend: Literal["namespaces", "containers"] = Field(
        default="namespaces",
        description="namespaces: local executors in their own Linux namespaces; containers: warm containers via the Docker API.",
    )
    docker_host: str | None = Field(default=None, description="Docker Engine API for the containers backend; default DOCKER_HOST (podman: unix:///run/podman/podman.sock).")
    container_image: str = Field(default="docker.io/library/python:3.11-slim", description="Image of the containers backend; needs python3 (and g++/gcc for C/C++).")
    container_python: str = Field(default="python3", description="Interpreter inside the container image.")
    container_languages: tuple[str, ...] = Field(default=("python",), description="Languages the container image can run.")

    # executors
    slots: int = Field(default_factory=lambda: len(os.sched_getaffinity(0)) or 1, ge=1, le=512,
                       description="Concurrent executions: one warm executor per slot; default the cores this process may use.")
    max_queued_runs: int = Field(default=2048, ge=0, description="Executions allowed to wait for a slot; past it, 429.")
    python: str | None = Field(default=None, description="Interpreter of the warm Python executors; default: the service's own base interpreter.")
    gxx: str = Field(default="g++", description="C++ compiler (C++17).")
    gcc: str = Field(default="gcc", description="C compiler (C11).")
    javac: str = Field(default="javac", description="Java compiler; java and jar are taken from the same JDK.")
    node: str = Field(default="node", description="Node.js, for javascript.")
    extra_ro_paths: tuple[str, ...] = Field(default=(), description="More host paths shown read-only inside the sandbox (e.g. a site-packages).")
    preload: tuple[str, ...] = Field(
        default=("math", "collections", "itertools", "functools", "heapq", "bisect", "re", "string", "typing",
                 "json", "random", "fractions", "decimal", "statistics", "operator", "copy", "hashlib", "datetime", "traceback"),
        description="Modules imported once per executor so forked runs find them warm.",
    )
    run_uid: int = Field(default=1000, ge=1, le=65534, description="The unprivileged uid programs run as, inside the user namespace.")
    host_uid_base: int = Field(default=61000, ge=1000, description="Host uid of slot i's runs is base + i (distinct, so process limits are per slot).")
    scratch_mb: int = Field(default=64, ge=1, le=4096, description="Size of each run's private /tmp.")
    file_mb: int = Field(default=32, ge=1, description="Largest file a run may write.")
    open_files: int = Field(default=256, ge=16)
    stack_mb: int = Field(default=256, ge=8)
    processes: int = Field(default=32, ge=1, le=4096, description="Processes and threads per run.")
    compiled_cache_mb: int = Field(default=256, ge=0, description="Compiled binaries kept, keyed by source and flags.")

    # per-run limits: defaults and ceilings
    default_cpu_s: float = Field(default=4.0, gt=0)
    default_wall_s: float | None = Field(default=None, gt=0, description="Default wall-clock backstop; None = 3 x cpu_s + 2.")
    default_memory_mb: int = Field(default=512, ge=32)
    default_output_kb: int = Field(default=1024, ge=1)
    max_cpu_s: float = Field(default=60.0, gt=0)
    max_wall_s: float = Field(default=180.0, gt=0)
    max_memory_mb: int = Field(default=4096, ge=32)
    max_output_kb: int = Field(default=16384, ge=1)
    compile_cpu_s: float = Field(default=10.0, gt=0, le=120, description="CPU seconds of one compilation (wall clock 2 x this + 5).")
    compile_memory_mb: int = Field(default=2048, ge=256, description="Memory of one compilation, the whole compiler's cgroup.")

    @property
    def compile_wall_s(self) -> float:
        return 2 * self.compile_cpu_s + 5

    # request limits
    max_body_bytes: int = Field(default=64 * 1024 * 1024, ge=1024)
    max_code_chars: int = Field(default=512 * 1024, ge=1)
    max_stdin_bytes: int = Field(default=16 * 1024 * 1024, ge=0)
    max_tests: int = Field(default=1024, ge=1)

    @field_validator("api_token")
    @classmethod
    def _token_not_trivial(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 8:
            raise ValueError("REWARDSTACK_SANDBOX_API_TOKEN must be at least 8 characters")
        return value

    @property
    def binds_beyond_loopback(self) -> bool:
        return self.host not in {"127.0.0.1", "localhost", "::1"}

    @model_validator(mode="after")
    def _coherent(self) -> SandboxSettings:
        if self.default_cpu_s > self.max_cpu_s:
            raise ValueError("REWARDSTACK_SANDBOX_DEFAULT_CPU_S exceeds REWARDSTACK_SANDBOX_MAX_CPU_S")
        if self.default_memory_mb > self.max_memory_mb:
            raise ValueError("REWARDSTACK_SANDBOX_DEFAULT_MEMORY_MB exceeds REWARDSTACK_SANDBOX_MAX_MEMORY_MB")
        if self.default_output_kb > self.max_output_kb:
            raise ValueError("REWARDSTACK_SANDBOX_DEFAULT_OUTPUT_KB exceeds REWARDSTACK_SANDBOX_MAX_OUTPUT_KB")
        return self

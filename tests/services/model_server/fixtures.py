"""Tiny random models saved to temporary folders once per session, and a model server over them.

Imported by the conftest here and by tests/services/scorers/test_neural.py."""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from rewardstack.services.model_server.app import create_model_app
from rewardstack.services.model_server.config import BatchingConfig, ModelServerSettings, ModelSpec
from rewardstack.services.model_server.tiny import build
from tests.servers import running_server

# A window small enough that the tests reach it with short texts (the tokenizer is byte-level).
MAX_LENGTH = 256


@pytest.fixture(scope="session")
def reward_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build(tmp_path_factory.mktemp("tiny-reward"), kind="reward")


@pytest.fixture(scope="session")
def guard_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build(tmp_path_factory.mktemp("tiny-guard"), kind="guard")


def tiny_specs(reward_path: Path, guard_path: Path, batching: BatchingConfig | None = None) -> dict[str, ModelSpec]:
    batching = batching or BatchingConfig(batch_tokens=2048, flush_tokens=8192, max_wait_ms=5)
    return {
        "helpfulness": ModelSpec(kind="reward", path=reward_path, max_length=MAX_LENGTH, batching=batching),
        "safety": ModelSpec(kind="guard", path=guard_path, max_length=MAX_LENGTH, batching=batching),
    }


def wait_ready(url: str, timeout_s: float = 120.0) -> httpx.Response:
    """Poll `/readyz` until 200 (models load after the server starts); the last answer otherwise."""
    deadline = time.monotonic() + timeout_s
    while True:
        response = httpx.get(f"{url}/readyz", timeout=10)
        if response.status_code == 200 or response.json()["status"] == "failed" or time.monotonic() > deadline:
            return response
        time.sleep(0.05)


@contextmanager
def serving(settings: ModelServerSettings, specs: Mapping[str, ModelSpec] | None = None) -> Iterator[str]:
    """A model server on a real uvicorn server, its models loaded; yields the base URL."""
    with running_server(create_model_app(settings, specs=specs)) as url:
        ready = wait_ready(url)
        assert ready.status_code == 200, ready.text
        yield url


@pytest.fixture(scope="module")
def tiny_server(reward_path: Path, guard_path: Path) -> Iterator[str]:
    settings = ModelServerSettings(max_items_per_request=64, max_response_chars=5000)
    with serving(settings, tiny_specs(reward_path, guard_path)) as url:
        yield url

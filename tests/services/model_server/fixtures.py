"""Tiny random models saved to temporary folders once per session, and a model server over them.

Imported by the conftest here and by tests/services/scorers/test_neural.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from services.model_server.app import create_model_app
from services.model_server.config import BatchingConfig, ModelServerSettings, ModelSpec
from services.model_server.tiny import build
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


@pytest.fixture(scope="module")
def tiny_server(reward_path: Path, guard_path: Path) -> Iterator[str]:
    settings = ModelServerSettings(max_items_per_request=64, max_response_chars=5000)
    with running_server(create_model_app(settings, specs=tiny_specs(reward_path, guard_path))) as url:
        yield url

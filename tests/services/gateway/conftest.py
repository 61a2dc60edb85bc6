from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from rewardstack.services.gateway.app import create_app
from rewardstack.services.settings import Settings
from tests.servers import running_server
from tests.services.gateway.scorers_for_tests import Length, Number

TEST_DEADLINE_S = 1.0


def gateway_settings(**overrides: object) -> Settings:
    # only the test scorers (added as extras) and `format`: no sandbox or model start-up
    base: dict[str, object] = {"scorer_workers": 2, "task_deadline_s": TEST_DEADLINE_S, "enabled_scorers": "format"}
    return Settings(**{**base, **overrides})


@pytest.fixture(scope="module")
def gateway_url() -> Iterator[str]:
    app = create_app(gateway_settings(), extra_cpu_scorers=[Number(), Length()])
    with running_server(app) as url:
        yield url


@pytest.fixture
def client(gateway_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gateway_url, timeout=30) as c:
        yield c

"""One real sandbox server per test session, on a free loopback port, shared by the sandbox tests."""

from __future__ import annotations

import os
from collections.abc import Iterator

import httpx
import pytest

from rewardstack.sandbox.app import create_sandbox_app
from tests.sandbox.helpers import SECRET_ENV, sandbox_settings
from tests.servers import running_server


@pytest.fixture(scope="session")
def sandbox_url() -> Iterator[str]:
    os.environ[SECRET_ENV] = "do-not-leak-7f3a"  # the service's environment; runs must not see it
    try:
        with running_server(create_sandbox_app(sandbox_settings())) as url:
            yield url
    finally:
        os.environ.pop(SECRET_ENV, None)


@pytest.fixture(scope="session")
def client(sandbox_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sandbox_url, timeout=120) as http:
        yield http

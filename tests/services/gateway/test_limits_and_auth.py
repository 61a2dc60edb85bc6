"""Configured limits (413 naming the field) and the optional bearer token (401), on real servers."""

from __future__ import annotations

import asyncio

from collections.abc import Iterator

import httpx
import pytest

from rewardstack.services.gateway.app import create_app
from rewardstack.services.settings import Settings
from tests.servers import running_server
from tests.services.gateway.conftest import gateway_settings
from tests.services.gateway.scorers_for_tests import Number

TOKEN = "s3cret-token-for-tests"


@pytest.fixture(scope="module")
def strict_url() -> Iterator[str]:
    settings = gateway_settings(
        max_items_per_request=5, max_completion_chars=100, max_body_bytes=4096, api_token=TOKEN, scorer_workers=1
    )
    with running_server(create_app(settings, extra_cpu_scorers=[Number()])) as url:
        yield url


@pytest.fixture
def authed(strict_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=strict_url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30) as c:
        yield c


def body(completions: list[str]) -> dict:
    return {"items": [{"completion": c} for c in completions], "scorers": {"number": {}}}


def test_too_many_items_is_413_naming_items(authed: httpx.Client) -> None:
    response = authed.post("/v1/score", json=body(["1"] * 6))
    assert response.status_code == 413
    assert response.json() == {"code": "request_too_large", "detail": "items: 6 items; the limit is 5 per request"}


def test_too_long_completion_is_413_naming_the_item(authed: httpx.Client) -> None:
    response = authed.post("/v1/score", json=body(["1", "1" * 101]))
    assert response.status_code == 413
    assert response.json()["detail"].startswith("items[1].completion: 101 characters")


def test_too_large_body_is_413(authed: httpx.Client) -> None:
    response = authed.post("/v1/score", json=body(["1"]) | {"padding": "x" * 10_000})
    assert response.status_code == 413
    assert "request body" in response.json()["detail"]


def test_too_large_chunked_body_is_413(authed: httpx.Client) -> None:
    def chunks() -> Iterator[bytes]:  # no Content-Length: the size is counted as it streams
        yield b'{"items": [{"completion": "'
        for _ in range(100):
            yield b"1" * 100
        yield b'"}], "scorers": {"number": {}}}'

    response = authed.post("/v1/score", content=chunks(), headers={"content-type": "application/json"})
    assert response.status_code == 413


def test_within_limits_is_served(authed: httpx.Client) -> None:
    response = authed.post("/v1/score", json=body(["1"] * 5))
    assert response.status_code == 200
    assert [r["reward"] for r in response.json()["results"]] == [1.0] * 5


@pytest.mark.parametrize("header", [None, "Bearer wrong-token-123", "Basic " + TOKEN, TOKEN])
def test_missing_or_wrong_token_is_401(strict_url: str, header: str | None) -> None:
    headers = {"Authorization": header} if header else {}
    for path, method in (("/v1/score", "POST"), ("/v1/scorers", "GET")):
        response = httpx.request(method, strict_url + path, json=body(["1"]), headers=headers)
        assert response.status_code == 401
        assert response.json()["code"] == "unauthorized"
        assert response.headers["www-authenticate"] == "Bearer"


def test_probes_need_no_token(strict_url: str) -> None:
    assert httpx.get(strict_url + "/healthz").status_code == 200
    assert httpx.get(strict_url + "/readyz").status_code == 200
    assert httpx.get(strict_url + "/metrics").status_code == 200


def test_defaults_bind_loopback_and_refuse_trivial_tokens() -> None:
    assert Settings().host == "127.0.0.1"
    with pytest.raises(ValueError, match="at least 8 characters"):
        Settings(api_token="short")


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REWARDSTACK_MAX_ITEMS_PER_REQUEST", "7")
    monkeypatch.setenv("REWARDSTACK_TASK_DEADLINE_S", "2.5")
    settings = Settings()
    assert (settings.max_items_per_request, settings.task_deadline_s) == (7, 2.5)
    monkeypatch.setenv("REWARDSTACK_SCORER_WORKERS", "0")
    with pytest.raises(ValueError, match="scorer_workers"):
        Settings()


def test_enabled_scorers_take_names_and_unknown_ones_stop_start_up() -> None:
    with pytest.raises(ValueError, match="no weights"):
        Settings(enabled_scorers="math:1,format:0.2")
    app = create_app(gateway_settings(enabled_scorers="format,fromat"))

    async def start() -> None:
        async with app.router.lifespan_context(app):
            pass

    with pytest.raises(ValueError, match=r"unknown scorers \['fromat'\]"):
        asyncio.run(start())


def test_bad_settings_on_the_command_line_are_one_line_not_a_traceback() -> None:
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-m", "rewardstack.services.cli", "serve", "--workers", "0"], capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.startswith("rewardstack serve: scorer_workers: Input should be greater than or equal to 1")
    assert "Traceback" not in result.stderr

"""The embedded default (`rewardstack serve` with no other configuration) on a real server:
every scorer is served, the README example holds, and pathological math cannot hang it."""

from __future__ import annotations

import concurrent.futures
import time
from collections.abc import Iterator

import httpx
import pytest

from rewardstack.services.gateway.app import create_app
from rewardstack.services.settings import Settings
from tests.servers import running_server

DEADLINE_S = 3.0
ALL_SCORERS = {"math", "format", "language", "length", "repetition", "readability", "code", "helpfulness", "safety"}


@pytest.fixture(scope="module")
def default_url() -> Iterator[str]:
    with running_server(create_app(Settings(scorer_workers=2, task_deadline_s=DEADLINE_S))) as url:
        yield url


def test_every_scorer_is_served_with_version_and_scale(default_url: str) -> None:
    scorers = {s["name"]: s for s in httpx.get(default_url + "/v1/scorers").json()["scorers"]}
    assert set(scorers) >= ALL_SCORERS
    for scorer in scorers.values():
        assert scorer["version"].startswith(scorer["name"] + "@")
        assert scorer["description"], f"{scorer['name']} documents no scale"


def test_readme_example(default_url: str) -> None:
    body = {
        "items": [{"id": "q1-a", "group_id": "q1", "completion": "<think>6 times 7</think><answer>\\boxed{42}</answer>",
                   "reference": "#### 42"}],
        "scorers": {"math": {"weight": 1.0}, "format": {"weight": 0.2}},
    }
    (result,) = httpx.post(default_url + "/v1/score", json=body, timeout=60).json()["results"]
    assert result["status"] == "ok"
    assert result["reward"] == pytest.approx(1.2)


def test_one_request_uses_every_scorer(default_url: str) -> None:
    completion = (
        "<think>I add the numbers in the list and return the sum.</think>"
        "<answer>\n```python\ndef total(xs):\n    return sum(xs)\n```\n</answer>"
    )
    body = {
        "items": [{"prompt": "Write total(xs) returning the sum of a list.", "completion": completion,
                   "reference": {"mode": "assert", "tests": ["assert total([1, 2]) == 3", "assert total([]) == 0"]},
                   "metadata": {"correct": True}}],
        "scorers": {name: {"weight": 1.0} for name in ALL_SCORERS - {"math"}},
    }
    (result,) = httpx.post(default_url + "/v1/score", json=body, timeout=120).json()["results"]
    statuses = {name: c["status"] for name, c in result["components"].items()}
    assert statuses == {name: "ok" for name in ALL_SCORERS - {"math"}}, result
    assert result["components"]["code"]["value"] == 1.0
    assert result["components"]["format"]["value"] == 1.0


PATHOLOGICAL = {
    "power-tower-9": r"\boxed{9^{9^{9^9}}}",
    "huge-factorial": r"\boxed{(10^8)!}",
    "power-tower-2": r"\boxed{2^{2^{2^{2^{2^2}}}}}",
    "100k-char-answer": r"\boxed{" + "7" * 100_000 + "}",
    "5000-nested-braces": r"\boxed{" + "{" * 5000 + "1" + "}" * 5000 + "}",
}


@pytest.mark.parametrize("completion", PATHOLOGICAL.values(), ids=PATHOLOGICAL.keys())
def test_pathological_math_is_bounded_and_does_not_block_others(default_url: str, completion: str) -> None:
    def ordinary() -> float:
        started = time.monotonic()
        body = {"items": [{"completion": r"\boxed{\frac{1}{2}}", "reference": "0.5"}], "scorers": {"math": {}}}
        (result,) = httpx.post(default_url + "/v1/score", json=body, timeout=60).json()["results"]
        assert result["reward"] == 1.0
        return time.monotonic() - started

    body = {"items": [{"completion": completion, "reference": "1"}] * 2, "scorers": {"math": {}}}
    with concurrent.futures.ThreadPoolExecutor(1) as executor:
        started = time.monotonic()
        pending = executor.submit(httpx.post, default_url + "/v1/score", json=body, timeout=60)
        time.sleep(0.05)
        ordinary_s = ordinary()
        response = pending.result()
        elapsed_s = time.monotonic() - started
    for result in response.json()["results"]:
        assert result["status"] in ("timeout", "unscorable"), result
        assert result["reward"] is None
    assert elapsed_s < DEADLINE_S + 1 + 2  # the deadline plus one second, plus HTTP and start-up slack
    assert ordinary_s < DEADLINE_S + 3
    deadline = time.monotonic() + 30
    while httpx.get(default_url + "/readyz").json()["workers_alive"] != 2:
        assert time.monotonic() < deadline, "the pool did not return to full size"
        time.sleep(0.05)

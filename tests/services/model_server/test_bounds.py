"""The model server's input bounds: items cut to what the model reads before tokenizing, a default
per-request deadline, and a 60 MB prompt that neither holds the server nor leaves it larger.

The 60 MB test runs the real `rewardstack models` process (the embedded MiniLM models), because
what it checks is that process: its resident memory and how soon it answers the next request.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from rewardstack.services.model_server.config import BatchingConfig, ModelServerSettings
from rewardstack.services.model_server.schema import ModelItem, ModelOutcome, OutcomeStatus
from rewardstack.services.model_server.served import CHARS_PER_TOKEN, cap_characters
from tests.servers import free_port
from tests.services.model_server.fixtures import MAX_LENGTH, serving, tiny_specs, wait_ready

WINDOW_CHARS = MAX_LENGTH * CHARS_PER_TOKEN


@pytest.mark.parametrize(("item", "expected"), [
    pytest.param(ModelItem(prompt="q?", response="a"), ModelItem(prompt="q?", response="a"), id="short-unchanged"),
    pytest.param(ModelItem(prompt=None, response="a"), ModelItem(prompt=None, response="a"), id="no-prompt"),
    pytest.param(ModelItem(prompt="x" * 10 + "Q" * 90, response="a"), ModelItem(prompt="Q" * 90, response="a"), id="prompt-cut-from-the-left"),
    pytest.param(ModelItem(prompt="q", response="r" * 90), ModelItem(prompt="q", response="r" * 90), id="response-at-the-cap"),
])
def test_cap_characters_keeps_the_end_of_the_prompt(item: ModelItem, expected: ModelItem) -> None:
    assert cap_characters(item, 90) == expected


def test_a_response_past_the_cap_is_too_long_never_cut() -> None:
    outcome = cap_characters(ModelItem(prompt="q", response="r" * 91), 90)
    assert isinstance(outcome, ModelOutcome) and outcome.status is OutcomeStatus.TOO_LONG and outcome.score is None
    assert "91 characters" in outcome.detail


def test_a_response_past_the_character_cap_is_too_long_and_its_neighbours_are_scored(reward_path: Path, guard_path: Path) -> None:
    settings = ModelServerSettings(max_response_chars=10 * WINDOW_CHARS)
    with serving(settings, tiny_specs(reward_path, guard_path)) as url:
        items = [{"prompt": "q", "response": "fine"}, {"prompt": "q", "response": "y" * (WINDOW_CHARS + 1)},
                 {"prompt": "z" * (20 * WINDOW_CHARS) + " the question", "response": "fine"}]
        response = httpx.post(f"{url}/v1/models/helpfulness/score", json={"items": items}, timeout=60)
    assert response.status_code == 200, response.text
    first, long, long_prompt = response.json()["results"]
    assert first["status"] == "ok" and long_prompt["status"] == "ok"
    assert long["status"] == "too_long" and long["score"] is None and "characters" in long["detail"]


def test_a_request_past_the_deadline_is_a_503_and_leaves_no_work_queued(reward_path: Path, guard_path: Path) -> None:
    # A flush wait longer than the deadline: the items are still queued when it passes.
    specs = tiny_specs(reward_path, guard_path, BatchingConfig(batch_tokens=2048, flush_tokens=1 << 20, max_wait_ms=5000))
    with serving(ModelServerSettings(request_deadline_s=0.2), specs) as url:
        response = httpx.post(f"{url}/v1/models/helpfulness/score", json={"items": [{"prompt": "q", "response": "a"}] * 8}, timeout=60)
        assert response.status_code == 503 and response.headers["retry-after"]
        body = response.json()
        assert body["code"] == "deadline_exceeded" and "8 items" in body["detail"] and "REWARDSTACK_MODELS_REQUEST_DEADLINE_S" in body["detail"]
        metrics = httpx.get(f"{url}/metrics").text
    assert 'rewardstack_model_queue_depth{model="helpfulness"} 0.0' in metrics


@pytest.fixture(scope="module")
def models_process() -> Iterator[tuple[str, int]]:
    """`rewardstack models` with the embedded default on a free port: (url, pid)."""
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "rewardstack.services.cli", "models", "--port", str(port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                if wait_ready(url, timeout_s=180).status_code == 200:
                    break
            except httpx.TransportError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the model server did not start: {process.stderr.read().decode()[-2000:] if process.stderr else ''}") from None
                time.sleep(0.5)
        yield url, process.pid
    finally:
        process.terminate()
        process.wait(timeout=30)


def _resident_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def _timed_score(url: str, body: dict, timeout_s: float = 120) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = httpx.post(f"{url}/v1/models/helpfulness/score", json=body, timeout=timeout_s)
    return response, time.monotonic() - started


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads resident memory from /proc")
def test_a_60_mb_prompt_is_cut_and_the_server_is_as_fast_and_as_small_after_it(models_process: tuple[str, int]) -> None:
    url, pid = models_process
    small = {"items": [{"prompt": "What is 2+2?", "response": "4"}]}
    warm = max(_timed_score(url, small)[1] for _ in range(3))  # this machine's pace, measured now
    baseline_mb = _resident_mb(pid)
    huge = {"items": [{"prompt": "word " * 12_000_000 + "What is 2+2?", "response": "4"}]}  # 60 MB
    response, _ = _timed_score(url, huge, timeout_s=300)
    assert response.status_code == 200, response.text[:500]
    (result,) = response.json()["results"]
    assert result["status"] == "ok" and isinstance(result["score"], float)  # cut from the left, then scored
    response, after = _timed_score(url, small)
    assert response.status_code == 200
    # Issue 12 measured 110 s here; the bound leaves room for a busy machine, not for a held server.
    assert after < max(1.0, 3 * warm), (after, warm)
    assert _resident_mb(pid) < baseline_mb + 150, (baseline_mb, _resident_mb(pid))

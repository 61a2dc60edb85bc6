"""The `code` scorer against a real sandbox: extraction, references, rewards, and failures that are never 0."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import Iterator
from typing import Any

import pytest

from rewardstack.sandbox.app import create_sandbox_app
from rewardstack.sandbox.settings import SandboxSettings
from rewardstack.services.contract import Status
from rewardstack.services.scorers.code import REPLY_MARGIN_S, CodeScorer, SandboxLimits, extract_code, open_code_scorer
from rewardstack.services.scorers.types import Sample, Scored, ScoringContext
from rewardstack.services.settings import Settings
from tests.servers import free_port, running_server

HOST_UID_BASE = 210_000 + (os.getpid() % 1000) * 16
ADD = {"tests": [{"input": "1 2", "output": "3"}, {"input": "2 2", "output": "4"}, {"input": "0 5", "output": "5"}]}
GOOD = "Here you go:\n```python\na, b = map(int, input().split())\nprint(a + b)\n```\n"
TIMES = "```python\na, b = map(int, input().split())\nprint(a * b)\n```"  # right on test 2 only


@pytest.fixture(scope="module")
def sandbox_url() -> Iterator[str]:
    settings = SandboxSettings(slots=2, host_uid_base=HOST_UID_BASE)
    with running_server(create_sandbox_app(settings)) as url:
        yield url


def score(url: str | None, samples: list[Sample], context: ScoringContext | None = None, **params: Any) -> list[Scored]:
    async def go() -> list[Scored]:
        async with open_code_scorer(Settings(sandbox_url=url)) as scorer:
            return await scorer.score_batch(samples, CodeScorer.Params(**params), context or ScoringContext(task_deadline_s=60))

    return asyncio.run(go())


@pytest.mark.parametrize(
    ("completion", "language", "expected"),
    [
        pytest.param("```python\nprint(1)\n```", None, ("python", "print(1)\n"), id="tagged"),
        pytest.param("```py\nx\n```\ntext\n```python\ny\n```", None, ("python", "y\n"), id="last-block-wins"),
        pytest.param("```python\nx\n```\n```text\n42\n```", None, ("python", "x\n"), id="other-tags-ignored"),
        pytest.param("```\nprint(2)\n```", None, ("python", "print(2)\n"), id="untagged-is-python"),
        pytest.param("```\nint main(){}\n```", "cpp", ("cpp", "int main(){}\n"), id="untagged-is-wanted-language"),
        pytest.param("```cpp\nA\n```\n```python\nB\n```", "cpp", ("cpp", "A\n"), id="language-aware"),
        pytest.param("```C++\nA\n```", None, ("cpp", "A\n"), id="cpp-alias"),
        pytest.param("```python\nprint(3)\n", None, ("python", "print(3)\n"), id="unclosed-final-block"),
        pytest.param("  ```python\n  x = 1\n  ```", None, ("python", "  x = 1\n"), id="indented-fence"),
        pytest.param("<think>hm</think>\n<answer>```python\nprint(4)\n```</answer>", None, ("python", "print(4)\n"),
                     id="fence-right-after-a-tag"),
        pytest.param("<answer> ```python\nprint(5)\n```\n</answer>", "python", ("python", "print(5)\n"), id="fence-after-tag-and-space"),
        pytest.param("use ```print(1)``` inline", None, None, id="inline-backticks-are-not-a-block"),
        pytest.param("no code at all", None, None, id="no-block"),
        pytest.param("```cpp\nA\n```", "python", None, id="wrong-language-only"),
    ],
)
def test_extract_code(completion: str, language: str | None, expected: tuple[str, str] | None) -> None:
    assert extract_code(completion, language) == expected


@pytest.mark.parametrize(
    ("reward", "completion", "value"),
    [
        ("binary", GOOD, 1.0),
        ("binary", TIMES, 0.0),
        ("fraction", GOOD, 1.0),
        ("fraction", TIMES, 1 / 3),
        ("weighted", TIMES, 0.5),  # weights 1, 2, 1 below: test 2 carries half
    ],
)
def test_rewards(sandbox_url: str, reward: str, completion: str, value: float) -> None:
    reference = dict(ADD, weights=[1, 2, 1])
    [scored] = score(sandbox_url, [Sample(completion, reference)], reward=reward)
    assert scored.status is Status.OK, scored
    assert scored.value == pytest.approx(value)


def test_reference_forms_and_modes(sandbox_url: str) -> None:
    call = {"mode": "call", "entry_point": "add", "tests": [{"args": [1, 2], "expected": 3}]}
    asserts = {"tests": ["assert add(1, 2) == 3", "assert add(-1, 1) == 0"], "prefix": "from typing import List\n"}
    cpp = dict(ADD, language="cpp")
    samples = [
        Sample(GOOD, json.dumps(ADD)),  # the reference as a JSON string
        Sample("```python\ndef add(a, b):\n    return a + b\n```", call),
        Sample("```python\ndef add(a: List[int], b):\n    return a + b\n```", asserts),  # prefix supplies List
        Sample("```cpp\n#include <cstdio>\nint main(){int a,b;scanf(\"%d %d\",&a,&b);printf(\"%d\\n\",a+b);}\n```", cpp),
        Sample("```python\nprint(3)\n```", cpp),  # no C++ block: the model's fault
    ]
    results = score(sandbox_url, samples)
    assert [(r.status, r.value) for r in results] == [(Status.OK, 1.0)] * 4 + [(Status.OK, 0.0)], results


@pytest.mark.parametrize(
    "reference",
    [
        pytest.param(None, id="none"),
        pytest.param("not json", id="bad-json"),
        pytest.param({"tests": []}, id="no-tests"),
        pytest.param({"tests": [{"input": "", "output": ""}], "mode": "fuzzy"}, id="bad-mode"),
        pytest.param({"tests": [{"input": "", "output": ""}], "weights": [1, 2]}, id="weights-length"),
        pytest.param({"tests": [{"args": [1], "expected": 1}]}, id="call-without-entry-point-refused-by-sandbox"),
    ],
)
def test_bad_reference_is_unscorable(sandbox_url: str, reference: Any) -> None:
    [scored] = score(sandbox_url, [Sample("```python\ndef f(x):\n    return x\n```", reference)])
    assert scored.status is Status.UNSCORABLE and scored.value is None, scored


def test_no_code_block_is_zero_not_unscorable(sandbox_url: str) -> None:
    [scored] = score(sandbox_url, [Sample("I think the answer is 3.", ADD)])
    assert (scored.status, scored.value) == (Status.OK, 0.0)


def test_unreachable_sandbox_is_error_never_zero() -> None:
    url = f"http://127.0.0.1:{free_port()},http://127.0.0.1:{free_port()}"  # nothing listens on either
    results = score(url, [Sample(GOOD, ADD), Sample(TIMES, ADD)])
    assert all(r.status is Status.ERROR and r.value is None for r in results), results
    assert "unreachable" in results[0].detail


def test_sandbox_failure_is_error_never_zero() -> None:
    """An executor killed mid-run gives verdict sandbox_error, which the scorer reports as `error`."""

    async def go() -> Scored:
        async with open_code_scorer(Settings()) as scorer:  # embedded sandbox
            app = scorer._clients[0]._transport.app  # type: ignore[attr-defined]
            slow = Sample("```python\nimport time\ntime.sleep(3)\n```", {"tests": [{"input": "", "output": ""}], "limits": {"wall_s": 10}})
            task = asyncio.create_task(scorer.score_batch([slow], CodeScorer.Params(), ScoringContext(task_deadline_s=60)))
            while app.state.pool.running == 0:
                await asyncio.sleep(0.05)
            for slot in app.state.pool._slots:
                slot.kill()
            [scored] = await task
            return scored

    scored = asyncio.run(go())
    assert scored.status is Status.ERROR and scored.value is None, scored
    assert "sandbox_error" in scored.detail


def test_batch_deadline_is_timeout(sandbox_url: str) -> None:
    """The caller's own deadline (`deadline_s` of the batch) still bounds an item: `timeout`."""
    sleepy = Sample("```python\nimport time\ntime.sleep(5)\n```", {"tests": [{"input": "", "output": ""}], "limits": {"wall_s": 10}})

    async def go() -> Scored:
        async with open_code_scorer(Settings(sandbox_url=sandbox_url)) as scorer:
            context = ScoringContext(task_deadline_s=60, batch_deadline=asyncio.get_running_loop().time() + 1.0)
            [scored] = await scorer.score_batch([sleepy], CodeScorer.Params(), context)
            return scored

    scored = asyncio.run(go())
    assert scored.status is Status.TIMEOUT and scored.value is None


def test_slow_wrong_program_gets_zero_not_timeout(sandbox_url: str) -> None:
    """Issue 14: a wrong program that sleeps 13 s (under the sandbox's default 14 s wall limit)
    gets its verdict and 0, however short the gateway's per-task deadline for CPU scorers: the
    deadline of a code item follows from its runs' limits."""
    slow = Sample("```python\nimport time\ntime.sleep(13)\nprint(4)\n```", ADD)
    [scored] = score(sandbox_url, [slow], ScoringContext(task_deadline_s=10))
    assert (scored.status, scored.value) == (Status.OK, 0.0), scored
    assert "wrong_answer" in scored.detail


def test_run_budget_follows_the_limits() -> None:
    sandbox = SandboxLimits(slots=2, default_cpu_s=4.0, compile_wall_s=25.0)
    assert CodeScorer.run_budget_s({"wall_s": 14.0}, 1, False, sandbox) == 14.0 * 2 + REPLY_MARGIN_S
    assert CodeScorer.run_budget_s({"wall_s": 5.0}, 3, True, sandbox) == 25.0 + 5.0 * 4 + REPLY_MARGIN_S


def test_items_queue_for_capacity_without_timing_out(monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 12: 12 items of 1.5 s each on a 2-slot sandbox take about 9 s in all, more than
    any one item's budget (2.5 s wall x 2 + margin = 10 s, minus the queueing); the gateway holds
    them until a slot is free, so the wait never counts against an item: all 12 are scored."""
    monkeypatch.setenv("REWARDSTACK_SANDBOX_SLOTS", "2")
    monkeypatch.setenv("REWARDSTACK_SANDBOX_HOST_UID_BASE", str(HOST_UID_BASE))
    slow = "```python\nimport time\ntime.sleep(1.5)\nprint(int(input()) * 2)\n```"
    reference = {"tests": [{"input": "2", "output": "4"}], "limits": {"cpu_s": 0.5, "wall_s": 2.5}}
    results = score(None, [Sample(slow, reference)] * 12, ScoringContext(task_deadline_s=1))
    assert [(r.status, r.value) for r in results] == [(Status.OK, 1.0)] * 12, results


def test_cancelled_request_stops_its_runs_without_restarts(monkeypatch: pytest.MonkeyPatch) -> None:
    """A caller that goes away stops its runs at once; the executors are reused, not restarted."""
    monkeypatch.setenv("REWARDSTACK_SANDBOX_SLOTS", "2")
    monkeypatch.setenv("REWARDSTACK_SANDBOX_HOST_UID_BASE", str(HOST_UID_BASE))
    sleeper = Sample("```python\nimport time\ntime.sleep(30)\n```", {"tests": [{"output": ""}] * 2, "limits": {"wall_s": 40}})

    async def go() -> tuple[int, int, list[Scored]]:
        async with open_code_scorer(Settings()) as scorer:  # embedded sandbox
            pool = scorer._clients[0]._transport.app.state.pool  # type: ignore[attr-defined]
            task = asyncio.create_task(scorer.score_batch([sleeper, sleeper], CodeScorer.Params(), ScoringContext(task_deadline_s=60)))
            while pool.running < 2:
                await asyncio.sleep(0.05)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            loop = asyncio.get_running_loop()
            stop_by = loop.time() + 10  # far less than the 30 s the runs would have slept
            while pool.running or len(pool._free) < 2:
                assert loop.time() < stop_by, "the cancelled runs were not stopped"
                await asyncio.sleep(0.05)
            after = await scorer.score_batch([Sample(GOOD, ADD)], CodeScorer.Params(), ScoringContext(task_deadline_s=60))
            return pool.restarts, pool.alive, after

    restarts, alive, [after] = asyncio.run(go())
    assert (restarts, alive) == (0, 2)
    assert (after.status, after.value) == (Status.OK, 1.0)


def test_embedded_sandbox_scores_a_batch() -> None:
    samples = [Sample(GOOD, ADD), Sample(TIMES, ADD), Sample("nothing", ADD)] * 4
    results = score(None, samples)
    assert [r.value for r in results] == [1.0, 0.0, 0.0] * 4
    assert all(r.latency_ms > 0 for r in results)


def test_contract() -> None:
    assert (CodeScorer.name, CodeScorer.version) == ("code", 2)
    assert "Scale" in CodeScorer.__doc__  # served by GET /v1/scorers
    with pytest.raises(ValueError):
        CodeScorer.Params(reward="best-of")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        CodeScorer.Params(unknown=1)  # type: ignore[call-arg]


def test_bearer_token_is_sent(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = SandboxSettings(slots=1, host_uid_base=HOST_UID_BASE, api_token="s3cret-token")
    with running_server(create_sandbox_app(settings)) as url:
        [refused] = score(url, [Sample(GOOD, ADD)])
        assert refused.status is Status.ERROR and "401" in refused.detail  # our misconfiguration, never 0
        monkeypatch.setenv("REWARDSTACK_SANDBOX_API_TOKEN", "s3cret-token")
        [scored] = score(url, [Sample(GOOD, ADD)])
        assert (scored.status, scored.value) == (Status.OK, 1.0)


def test_capacity_is_learned_from_every_replica(sandbox_url: str) -> None:
    """GET /v1/limits of each replica: the gate admits the slots of all of them (2 + 2 here)."""

    async def go() -> SandboxLimits:
        async with open_code_scorer(Settings(sandbox_url=f"{sandbox_url},{sandbox_url}")) as scorer:
            limits, _ = await scorer._sandbox()
            return limits

    limits = asyncio.run(go())
    assert (limits.slots, limits.default_cpu_s, limits.compile_wall_s) == (4, 4.0, 25.0)

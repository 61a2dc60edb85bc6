"""The `code` scorer against a real sandbox: extraction, references, rewards, and failures that are never 0."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Iterator
from typing import Any

import pytest

from rewardstack.sandbox.app import create_sandbox_app
from rewardstack.sandbox.settings import SandboxSettings
from rewardstack.services.contract import Status
from rewardstack.services.scorers.code import CodeScorer, extract_code, open_code_scorer
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


def test_deadline_is_timeout(sandbox_url: str) -> None:
    sleepy = Sample("```python\nimport time\ntime.sleep(2)\n```", {"tests": [{"input": "", "output": ""}], "limits": {"wall_s": 10}})
    [scored] = score(sandbox_url, [sleepy], ScoringContext(task_deadline_s=0.5))
    assert scored.status is Status.TIMEOUT and scored.value is None


def test_embedded_sandbox_scores_a_batch() -> None:
    samples = [Sample(GOOD, ADD), Sample(TIMES, ADD), Sample("nothing", ADD)] * 4
    results = score(None, samples)
    assert [r.value for r in results] == [1.0, 0.0, 0.0] * 4
    assert all(r.latency_ms > 0 for r in results)


def test_contract() -> None:
    assert (CodeScorer.name, CodeScorer.version) == ("code", 1)
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

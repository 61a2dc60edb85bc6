"""Every HumanEval canonical solution and MBPP reference solution is accepted; simple wrong programs are not.

Wrong programs: the function replaced by one returning None, and "off by one": the function's
result nudged (numbers + 1, sequences lose their last element, booleans negated). A dataset
task whose tests cannot tell a nudged result apart is listed in OFF_BY_ONE_EXCEPTIONS with why.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.data

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"

NUDGE = '''
_rs_original = {name}
def {name}(*args, **kwargs):
    result = _rs_original(*args, **kwargs)
    if isinstance(result, bool):
        return not result
    if isinstance(result, (int, float)):
        return result + 1
    if isinstance(result, (list, tuple, str)) and result:
        return result[:-1]
    return None
'''
# MBPP/123 (sum of amicable numbers below 10,000) takes about 2-3 s of CPU by itself.
DATASET_LIMITS = {"cpu_s": 10}
RETURN_NONE = "\ndef {name}(*args, **kwargs):\n    return None\n"

# Tasks whose own tests accept the wrong program (an honest weakness of the dataset's tests).
OFF_BY_ONE_EXCEPTIONS: dict[str, str] = {
    "MBPP/82": "asserts math.isclose(volume_sphere(r), v, rel_tol=0.001): 4188.79 + 1 is within 0.1%",
    "MBPP/85": "asserts math.isclose(surfacearea_sphere(r), a, rel_tol=0.001): 1256.64 + 1 is within 0.1%",
}


def _load_humaneval() -> list[dict[str, Any]]:
    path = DATA / "HumanEval.jsonl.gz"
    if not path.exists():
        pytest.skip(f"{path} not found: the shared data folder is absent")
    with gzip.open(path, "rt") as f:
        return [json.loads(line) for line in f]


def _load_mbpp() -> list[dict[str, Any]]:
    path = DATA / "mbpp_sanitized.json"
    if not path.exists():
        pytest.skip(f"{path} not found: the shared data folder is absent")
    return json.loads(path.read_text())


def _mbpp_function(task: dict[str, Any]) -> str:
    """The function the asserts call: the first name defined at top level that the first assert uses."""
    defined = re.findall(r"^def\s+(\w+)", task["code"], re.MULTILINE)
    called = re.findall(r"(\w+)\s*\(", task["test_list"][0])
    return next(name for name in called if name in defined)


def humaneval_body(task: dict[str, Any], program: str, stop: bool = False) -> dict[str, Any]:
    return {"language": "python", "code": program, "mode": "assert", "stop_on_first_failure": stop,
            "tests": [task["test"] + f"\ncheck({task['entry_point']})\n"], "test_prelude": task["prompt"],
            "limits": DATASET_LIMITS}


def mbpp_body(task: dict[str, Any], program: str, stop: bool = False) -> dict[str, Any]:
    imports = "\n".join(task["test_imports"])
    return {"language": "python", "code": program, "mode": "assert", "stop_on_first_failure": stop,
            "tests": [f"{imports}\n{assertion}" for assertion in task["test_list"]], "limits": DATASET_LIMITS}


def _judge_all(url: str, bodies: list[dict[str, Any]]) -> list[dict[str, Any]]:
    async def judge_all() -> list[dict[str, Any]]:
        limits = httpx.Limits(max_connections=16)
        async with httpx.AsyncClient(base_url=url, timeout=300, limits=limits) as http:
            async def one(body: dict[str, Any]) -> dict[str, Any]:
                response = await http.post("/v1/judge", json=body)
                assert response.status_code == 200, response.text
                return response.json()

            return list(await asyncio.gather(*(one(b) for b in bodies)))

    return asyncio.run(judge_all())


def _not_accepted(ids: list[str], results: list[dict[str, Any]]) -> dict[str, str]:
    return {i: f"{r['verdict']}: {r['tests'][0]['detail'][:120]}" for i, r in zip(ids, results) if r["verdict"] != "accepted"}


def test_humaneval(sandbox_url: str) -> None:
    tasks = _load_humaneval()
    assert len(tasks) == 164
    ids = [t["task_id"] for t in tasks]
    canonical = _judge_all(sandbox_url, [humaneval_body(t, t["prompt"] + t["canonical_solution"]) for t in tasks])
    assert _not_accepted(ids, canonical) == {}
    program = lambda t, wrong: t["prompt"] + t["canonical_solution"] + wrong.format(name=t["entry_point"])  # noqa: E731
    none = _judge_all(sandbox_url, [humaneval_body(t, program(t, RETURN_NONE), stop=True) for t in tasks])
    assert [i for i, r in zip(ids, none) if r["verdict"] == "accepted"] == []
    nudged = _judge_all(sandbox_url, [humaneval_body(t, program(t, NUDGE), stop=True) for t in tasks])
    assert {i for i, r in zip(ids, nudged) if r["verdict"] == "accepted"} == set(OFF_BY_ONE_EXCEPTIONS) & set(ids)


def test_mbpp(sandbox_url: str) -> None:
    tasks = _load_mbpp()
    assert len(tasks) == 427
    ids = [f"MBPP/{t['task_id']}" for t in tasks]
    reference = _judge_all(sandbox_url, [mbpp_body(t, t["code"]) for t in tasks])
    assert _not_accepted(ids, reference) == {}
    program = lambda t, wrong: t["code"] + "\n" + wrong.format(name=_mbpp_function(t))  # noqa: E731
    none = _judge_all(sandbox_url, [mbpp_body(t, program(t, RETURN_NONE), stop=True) for t in tasks])
    assert [i for i, r in zip(ids, none) if r["verdict"] == "accepted"] == []
    nudged = _judge_all(sandbox_url, [mbpp_body(t, program(t, NUDGE), stop=True) for t in tasks])
    assert {i for i, r in zip(ids, nudged) if r["verdict"] == "accepted"} == set(OFF_BY_ONE_EXCEPTIONS) & set(ids)

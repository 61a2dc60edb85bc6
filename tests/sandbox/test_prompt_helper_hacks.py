"""Issue 14, still open: HumanEval tasks whose tests call helpers that the prompt defines.

HumanEval/32, 38 and 50 test the candidate with random inputs through `poly`, `encode_cyclic` and
`encode_shift`, functions of the prompt. The program is prompt + completion and these tests run in
the program's own process (sandbox/assertions.py cannot convert them), so a completion that does
not solve the task can redefine the helper, or patch what the test uses (`math.fabs`), and pass.

Each attack below is marked `xfail` (strict, as pyproject sets): it documents that the sandbox
ACCEPTS the cheat today. When the fix lands (docs/sandbox.md, "Left open") these tests start to
pass, strict xfail turns that into a failure, and the marker must be removed. The canonical
solutions of the same tasks must stay accepted (here, and all 164 in test_datasets.py).
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.sandbox.helpers import judge

pytestmark = pytest.mark.data

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "HumanEval.jsonl.gz"

# Completions (appended to the task's prompt) that do not solve the task.
CHEATS: dict[str, tuple[str, str]] = {
    "32-redefine-poly": ("HumanEval/32", "    return 0.0\n\n\ndef poly(xs, x):\n    return 0.0\n"),
    "32-patch-math-fabs": ("HumanEval/32", "    math.fabs = lambda value: 0.0\n    return 0.0\n"),
    "38-redefine-encode_cyclic": ("HumanEval/38", "    return s\n\n\ndef encode_cyclic(s):\n    return s\n"),
    "50-redefine-encode_shift": ("HumanEval/50", "    return s\n\n\ndef encode_shift(s):\n    return s\n"),
}
# The same wrong answers without the trick: rejected today, so each cheat's pass is the trick's doing.
WRONG = {"HumanEval/32": "    return 0.0\n", "HumanEval/38": "    return s\n", "HumanEval/50": "    return s\n"}
OPEN = "issue 14 left open: the test runs in the program's process and calls helpers the completion can redefine"


def _tasks() -> dict[str, dict[str, Any]]:
    if not DATA.exists():
        pytest.skip(f"{DATA} not found: the shared data folder is absent")
    with gzip.open(DATA, "rt") as f:
        return {t["task_id"]: t for t in map(json.loads, f)}


def _judge(client: httpx.Client, task: dict[str, Any], completion: str) -> dict[str, Any]:
    return judge(client, code=task["prompt"] + completion, mode="assert",
                 tests=[task["test"] + f"\ncheck({task['entry_point']})\n"], limits={"cpu_s": 10})


@pytest.mark.parametrize("task_id", ["HumanEval/32", "HumanEval/38", "HumanEval/50"])
def test_canonical_solution_is_accepted(client: httpx.Client, task_id: str) -> None:
    task = _tasks()[task_id]
    result = _judge(client, task, task["canonical_solution"])
    assert result["verdict"] == "accepted", result


@pytest.mark.parametrize("task_id", WRONG)
def test_wrong_answer_without_the_trick_is_rejected(client: httpx.Client, task_id: str) -> None:
    result = _judge(client, _tasks()[task_id], WRONG[task_id])
    assert result["verdict"] == "wrong_answer", result


@pytest.mark.xfail(reason=OPEN)
@pytest.mark.parametrize("cheat", CHEATS)
def test_cheat_is_rejected(client: httpx.Client, cheat: str) -> None:
    task_id, completion = CHEATS[cheat]
    result = _judge(client, _tasks()[task_id], completion)
    assert result["verdict"] in ("wrong_answer", "runtime_error"), result

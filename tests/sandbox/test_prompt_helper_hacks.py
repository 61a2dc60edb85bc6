"""Issue 14: HumanEval tasks whose tests call helpers that the prompt defines, through the real sandbox.

HumanEval/32, 38 and 50 test the candidate with random inputs through `poly`, `encode_cyclic` and
`encode_shift`, functions of the prompt; 53 draws random inputs. The program is prompt +
completion, so when these tests ran in the program's process a completion that does not solve the
task passed by redefining the helper or patching what the test uses (`math.fabs`, `random`).
Their statements now run in a trusted process of the run with the prompt as `test_prelude`, and
call the program's process for the candidate's values only (sandbox/harness.py, `_checks_apart`).
The canonical solutions stay accepted (here, and all 164 in test_datasets.py).
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

FORGE = '''    return s


import gc, json, os

def _forge():
    nonces = [o["nonce"] for o in gc.get_objects() if isinstance(o, dict) and isinstance(o.get("nonce"), str)]
    lines = "".join(json.dumps({"kind": "passed", "nonce": n}) + "\\n" for n in nonces).encode()
    for path in (f"/proc/{os.getppid()}/fd/3", "/proc/self/fd/3"):
        try:
            fd = os.open(path, os.O_WRONLY)
            os.write(fd, lines)
        except OSError:
            pass
    try:
        os.write(3, lines)
    except OSError:
        pass

_forge()
'''

# Completions (appended to the task's prompt) that do not solve the task.
CHEATS: dict[str, tuple[str, str]] = {
    "32-redefine-poly": ("HumanEval/32", "    return 0.0\n\n\ndef poly(xs, x):\n    return 0.0\n"),
    "32-patch-math-fabs": ("HumanEval/32", "    math.fabs = lambda value: 0.0\n    return 0.0\n"),
    "38-redefine-encode_cyclic": ("HumanEval/38", "    return s\n\n\ndef encode_cyclic(s):\n    return s\n"),
    "50-redefine-encode_shift": ("HumanEval/50", "    return s\n\n\ndef encode_shift(s):\n    return s\n"),
    # Right on the five constant asserts (checked by the service), 0 elsewhere; `random` patched
    # so that the random asserts ask for add(0, 0) only.
    "53-patch-random": ("HumanEval/53", "    return x + y if x + y in (1, 5, 12) else 0\n\n\n"
                                        "import random\nrandom.randint = lambda a, b: 0\n"),
    # The nonce is in the program's memory (it is forked from the trusted process); the pass
    # report's channel is not: fd 3 is closed and the trusted process's /proc entries are out of reach.
    "50-forge-pass-report": ("HumanEval/50", FORGE),
    "50-kill-the-test": ("HumanEval/50", "    return s\n\n\nimport os, signal\nos.kill(os.getppid(), signal.SIGKILL)\n"),
}
# The same wrong answers without the trick: rejected today, so each cheat's pass is the trick's doing.
WRONG = {"HumanEval/32": "    return 0.0\n", "HumanEval/38": "    return s\n", "HumanEval/50": "    return s\n"}


def _tasks() -> dict[str, dict[str, Any]]:
    if not DATA.exists():
        pytest.skip(f"{DATA} not found: the shared data folder is absent")
    with gzip.open(DATA, "rt") as f:
        return {t["task_id"]: t for t in map(json.loads, f)}


def _judge(client: httpx.Client, task: dict[str, Any], completion: str) -> dict[str, Any]:
    return judge(client, code=task["prompt"] + completion, mode="assert",
                 tests=[task["test"] + f"\ncheck({task['entry_point']})\n"], test_prelude=task["prompt"],
                 limits={"cpu_s": 10})


@pytest.mark.parametrize("task_id", ["HumanEval/32", "HumanEval/38", "HumanEval/50"])
def test_canonical_solution_is_accepted(client: httpx.Client, task_id: str) -> None:
    task = _tasks()[task_id]
    result = _judge(client, task, task["canonical_solution"])
    assert result["verdict"] == "accepted", result


@pytest.mark.parametrize("task_id", WRONG)
def test_wrong_answer_without_the_trick_is_rejected(client: httpx.Client, task_id: str) -> None:
    result = _judge(client, _tasks()[task_id], WRONG[task_id])
    assert result["verdict"] == "wrong_answer", result


@pytest.mark.parametrize("cheat", CHEATS)
def test_cheat_is_rejected(client: httpx.Client, cheat: str) -> None:
    task_id, completion = CHEATS[cheat]
    result = _judge(client, _tasks()[task_id], completion)
    assert result["verdict"] in ("wrong_answer", "runtime_error"), result


def test_test_statements_see_the_programs_calls(client: httpx.Client) -> None:
    """The test's own statements (a loop, a local list) run apart from the program: the program's
    function is called there with plain values, and an argument it changes in place comes back."""
    test = ("def check(candidate):\n    for n in range(2, 6):\n        lst = list(range(n, 0, -1))\n"
            "        assert candidate(lst) is None\n        assert lst == sorted(lst) and len(lst) == n\ncheck(sort_in_place)\n")
    honest = "def sort_in_place(lst):\n    lst.sort()\n"
    assert judge(client, code=honest, mode="assert", tests=[test])["verdict"] == "accepted"
    copying = "def sort_in_place(lst):\n    lst = sorted(lst)\n"
    assert judge(client, code=copying, mode="assert", tests=[test])["verdict"] == "wrong_answer"


def test_prelude_is_only_for_assert_mode(client: httpx.Client) -> None:
    response = client.post("/v1/judge", json={"language": "python", "code": "print(1)", "tests": [{"output": "1"}],
                                              "test_prelude": "def helper(): pass\n"})
    assert response.status_code == 422 and "test_prelude" in response.text, response.text


def test_program_that_ends_during_the_test_is_a_runtime_error(client: httpx.Client) -> None:
    """The program's process exits on its third call, while the test's loop still runs."""
    test = "def check(candidate):\n    for n in range(5):\n        assert candidate(n) == n\ncheck(same)\n"
    program = "import os\ncalls = []\ndef same(n):\n    calls.append(n)\n    if len(calls) == 3:\n        os._exit(0)\n    return n\n"
    result = judge(client, code=program, mode="assert", tests=[test])
    assert result["verdict"] == "runtime_error", result

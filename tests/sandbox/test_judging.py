"""Output comparison and verdict rules, without executing anything (sandbox/judging.py)."""

from __future__ import annotations

import signal

import pytest

from rewardstack.sandbox.judging import Execution, limit_verdict, tokens_match, values_match
from rewardstack.sandbox.models import Verdict


@pytest.mark.parametrize(
    ("actual", "expected", "accepted"),
    [
        pytest.param(b"1 2 3  \n", b"1 2 3\n", True, id="trailing-spaces"),
        pytest.param(b"1\r\n2\r\n", b"1\n2\n", True, id="crlf"),
        pytest.param(b"1 2 3", b"1 2 3\n", True, id="missing-final-newline"),
        pytest.param(b"1\n2", b"1 2", True, id="whitespace-between-tokens-is-free"),
        pytest.param(b"1 2", b"1 2 3", False, id="prefix-of-expected"),
        pytest.param(b"1 2 3\n4\n", b"1 2 3\n", False, id="extra-line"),
        pytest.param(b"3 2 1", b"1 2 3", False, id="reordered-tokens"),
        pytest.param(b"YES", b"yes", False, id="never-lower-cased"),
        pytest.param(b"", b"0", False, id="empty-output"),
        pytest.param(b"0.3333333333", b"0.333333333333", False, id="no-tolerance-unless-asked"),
        pytest.param(b"0.50", b"0.5", True, id="equal-as-floats"),
        pytest.param(b"0.3334", b"0.3333", False, id="float-not-close"),
        pytest.param(b"1.0000000001", b"1", False, id="no-tolerance-for-integer-expected"),
        pytest.param(b"1", b"1.0", True, id="integer-for-float-expected"),
        pytest.param(b"2.5e-3", b"0.0025", True, id="exponent-form"),
        pytest.param(b"1e-3", b"1e-3", True, id="identical-exponent"),
        pytest.param(b"123456789012345678901234567890", b"123456789012345678901234567891", False, id="bigint-exact"),
        pytest.param(b"123456789012345678901234567890", b"123456789012345678901234567890", True, id="bigint-equal"),
        pytest.param(b"1.0000000000000000001e30", b"1e30", True, id="same-double"),
        pytest.param(b"nan", b"1.5", False, id="nan-is-not-close"),
        pytest.param(b"abc", b"1.5", False, id="word-for-float"),
    ],
)
def test_stdio_tokens(actual: bytes, expected: bytes, accepted: bool) -> None:
    assert tokens_match(actual, expected)[0] is accepted


@pytest.mark.parametrize(
    ("actual", "expected", "tolerance", "accepted"),
    [
        pytest.param(b"0.3333333333", b"0.333333333333", (1e-9, 0.0), True, id="relative-asked"),
        pytest.param(b"0", b"1e-12", None, False, id="zero-for-tiny-without-tolerance"),
        pytest.param(b"0", b"1e-12", (1e-9, 0.0), False, id="zero-for-tiny-relative-only"),
        pytest.param(b"0", b"1e-12", (0.0, 1e-9), True, id="zero-for-tiny-when-the-test-asks-absolute"),
        pytest.param(b"1.5", b"1.4", (0.1, 0.0), True, id="loose-relative"),
    ],
)
def test_stdio_tolerance_only_when_asked(actual: bytes, expected: bytes, tolerance: tuple[float, float] | None, accepted: bool) -> None:
    assert tokens_match(actual, expected, tolerance)[0] is accepted


@pytest.mark.parametrize(
    ("actual", "expected", "equal"),
    [
        ([1, 2], [1, 2], True),
        ([1, 2], [2, 1], False),
        (0.1 + 0.2, 0.3, False),  # no tolerance unless the test asks (float_tolerance)
        (0.0, 1e-12, False),  # an answer of 0 is not close to a tiny expected value
        (0.5, 0.5, True),
        (2, 2.0, True),
        (True, 1, False),
        (1, True, False),
        ("1", 1, False),
        ({"a": [1.0]}, {"a": [1]}, True),
        ({"a": 1}, {"a": 1, "b": 2}, False),
        (None, None, True),
        (None, [], False),
        (10**40, 10**40 + 1, False),
    ],
)
def test_call_values(actual: object, expected: object, equal: bool) -> None:
    assert values_match(actual, expected) is equal


def test_call_values_with_tolerance() -> None:
    assert values_match(0.1 + 0.2, 0.3, (1e-9, 0.0))
    assert values_match([0.1 + 0.2], [0.3], (1e-9, 0.0))
    assert not values_match(0.0, 1e-12, (1e-9, 0.0))
    assert values_match(0.0, 1e-12, (0.0, 1e-9))


def _execution(**fields: object) -> Execution:
    values: dict[str, object] = {"exit_code": 0, "signal": None, "killed": None, "setup_ok": True, "cpu_ms": 5.0, "wall_ms": 6.0,
                                 "memory_kb": 10_000, "stdout": b"", "stderr": b"", "reports": ()}
    values.update(fields)
    return Execution(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("fields", "verdict"),
    [
        pytest.param({}, None, id="normal-end"),
        pytest.param({"exit_code": None, "signal": signal.SIGXCPU, "cpu_ms": 1000.0}, Verdict.TIME_LIMIT, id="sigxcpu"),
        pytest.param({"cpu_ms": 1500.0}, Verdict.TIME_LIMIT, id="cpu-over-limit-decides"),
        pytest.param({"exit_code": None, "signal": signal.SIGKILL, "killed": "wall", "cpu_ms": 3.0}, Verdict.TIME_LIMIT, id="wall-backstop"),
        pytest.param({"exit_code": None, "signal": signal.SIGKILL, "killed": "output"}, Verdict.OUTPUT_LIMIT, id="output-cap"),
        pytest.param({"exit_code": 1, "reports": ({"kind": "exception", "type": "MemoryError", "phase": "program"},)},
                     Verdict.MEMORY_LIMIT, id="python-memoryerror"),
        pytest.param({"exit_code": None, "signal": signal.SIGABRT, "stderr": b"terminate called after throwing an instance of 'std::bad_alloc'"},
                     Verdict.MEMORY_LIMIT, id="cpp-bad-alloc"),
        pytest.param({"exit_code": None, "signal": signal.SIGSEGV}, Verdict.RUNTIME_ERROR, id="segfault"),
        pytest.param({"exit_code": 3}, Verdict.RUNTIME_ERROR, id="nonzero-exit"),
        pytest.param({"exit_code": 1, "reports": ({"kind": "exception", "type": "AssertionError", "phase": "test"},)},
                     Verdict.WRONG_ANSWER, id="failed-assert"),
        pytest.param({"exit_code": 1, "compile_error": True, "reports": ({"kind": "compile_error", "type": "SyntaxError", "message": "x"},)},
                     Verdict.COMPILE_ERROR, id="python-syntax-error"),
        pytest.param({"exit_code": 1, "reports": ({"kind": "compile_error", "type": "SyntaxError", "message": "x"},)},
                     Verdict.RUNTIME_ERROR, id="forged-compile-error-report"),
        pytest.param({"exit_code": 0, "memory_limit_hit": True}, None, id="limit-met-but-run-succeeded"),
        pytest.param({"exit_code": 1, "memory_limit_hit": True}, Verdict.MEMORY_LIMIT, id="cgroup-memory-refused"),
        pytest.param({"signal": 9, "exit_code": None, "memory_limit_hit": True}, Verdict.MEMORY_LIMIT, id="cgroup-oom-kill"),
        pytest.param({"killed": "cpu", "signal": 9, "exit_code": None, "cpu_ms": 900.0}, Verdict.TIME_LIMIT, id="cgroup-cpu-budget"),
        pytest.param({"exit_code": 121, "setup_ok": False, "stderr": b"sandbox set-up failed: OSError()"}, Verdict.SANDBOX_ERROR, id="our-setup-failed"),
        pytest.param({"exit_code": 121, "stderr": b"sandbox set-up failed: OSError()"}, Verdict.RUNTIME_ERROR, id="forged-setup-failure"),
    ],
)
def test_limit_verdicts(fields: dict[str, object], verdict: Verdict | None) -> None:
    result = limit_verdict(_execution(**fields), cpu_s=1.0, memory_mb=256)
    assert (result[0] if result else None) == verdict

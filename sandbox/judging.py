"""From what an execution did to a verdict: limits first, then the mode's comparison. Pure functions.

Output comparison (`stdio`) is token by token: any run of whitespace separates tokens (so trailing
spaces and `\\r\\n` do not matter), tokens are never lower-cased, never compared as sets or
prefixes, and the counts must match. A token is compared as a float only where the *expected*
token is a non-integer number (`0.5`, `1e-3`): equal as floats (`0.50` = `0.5`), within the request's `float_tolerance` (relative and absolute,
as `math.isclose`) only when the request asks for one; integers, however big, are compared
exactly as text.
"""

from __future__ import annotations

import json
import math
import re
import signal
from dataclasses import dataclass
from typing import Any

from rewardstack.sandbox import values
from rewardstack.sandbox.assertions import Plan
from rewardstack.sandbox.models import Verdict

# What C++, Java and Node print when an allocation fails under the run's memory limit.
OUT_OF_MEMORY_MARKERS = (b"std::bad_alloc", b"java.lang.OutOfMemoryError", b"JavaScript heap out of memory")
_FLOAT_TOKEN = re.compile(rb"[+-]?(?:\d+\.\d*|\.\d+|\d+(?=[eE]))(?:[eE][+-]?\d+)?")


@dataclass(frozen=True)
class Execution:
    """What the executor reported about one execution."""

    exit_code: int | None
    signal: int | None
    killed: str | None  # "wall" | "cpu" | "output" | "cancelled" | None
    setup_ok: bool  # the executor's own set-up of the run succeeded (the program cannot forge this)
    cpu_ms: float
    wall_ms: float
    memory_kb: int
    stdout: bytes
    stderr: bytes
    reports: tuple[dict[str, Any], ...]
    compile_error: bool = False  # Python: the program did not compile (said before it ran; unforgeable too)
    memory_limit_hit: bool = False  # the run's cgroup met its memory limit (refused or OOM-killed allocation)

    @classmethod
    def from_reply(cls, reply: dict[str, Any], blobs: dict[str, bytes]) -> Execution:
        return cls(
            exit_code=reply.get("exit_code"), signal=reply.get("signal"), killed=reply.get("killed"),
            setup_ok=bool(reply.get("setup_ok")), compile_error=bool(reply.get("compile_error")),
            memory_limit_hit=bool(reply.get("memory_limit_hit")),
            cpu_ms=float(reply.get("cpu_ms", 0.0)), wall_ms=float(reply.get("wall_ms", 0.0)),
            memory_kb=int(reply.get("memory_kb", 0)), stdout=blobs.get("stdout", b""),
            stderr=blobs.get("stderr", b""), reports=parse_reports(blobs.get("report", b"")),
        )

    def report(self, kind: str) -> dict[str, Any] | None:
        return next((r for r in self.reports if r.get("kind") == kind), None)


def parse_reports(raw: bytes) -> tuple[dict[str, Any], ...]:
    """The harness's fd-3 lines; the program can write there too, so anything malformed is ignored."""
    out = []
    for line in raw.splitlines():
        try:
            value = json.loads(line)
        except (ValueError, RecursionError):
            continue
        if isinstance(value, dict):
            out.append(value)
    return tuple(out)


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _last_line(stderr: bytes) -> str:
    lines = [line for line in stderr.decode("utf-8", "replace").splitlines() if line.strip()]
    return lines[-1][:500] if lines else ""


def limit_verdict(run: Execution, cpu_s: float, memory_mb: int) -> tuple[Verdict, str] | None:
    """The verdict when the run did not end normally (limits, crashes); None when it did."""
    if not run.setup_ok:
        return Verdict.SANDBOX_ERROR, "the run's set-up failed: " + _last_line(run.stderr)
    if run.killed == "cancelled":
        return Verdict.SANDBOX_ERROR, "the run was cancelled by the service"
    if run.compile_error:
        # Only the harness's private flag decides; the report (which the program could also
        # write) is read for the message only.
        report = run.report("compile_error") or {}
        return Verdict.COMPILE_ERROR, f"{report.get('type')}: {report.get('message')}"
    if run.killed == "output":
        return Verdict.OUTPUT_LIMIT, "output over the limit; the program was stopped"
    cpu_limit_ms = cpu_s * 1000
    if (run.killed == "cpu" or run.signal == signal.SIGXCPU or run.cpu_ms > cpu_limit_ms
            or (run.signal == signal.SIGKILL and run.cpu_ms >= cpu_limit_ms * 0.95)):
        return Verdict.TIME_LIMIT, f"CPU time over {cpu_s:g} s (all of the run's processes and threads)"
    if run.killed == "wall":
        return Verdict.TIME_LIMIT, f"wall-clock backstop reached after {run.wall_ms / 1000:.1f} s (the program was waiting, not computing)"
    exception = run.report("exception")
    near_memory_limit = run.memory_kb >= memory_mb * 1024 * 0.9
    failed = run.signal is not None or bool(run.exit_code)
    if (exception and exception.get("type") == "MemoryError") or any(m in run.stderr for m in OUT_OF_MEMORY_MARKERS) or (
        run.signal in (signal.SIGKILL, signal.SIGSEGV, signal.SIGABRT) and near_memory_limit
    ) or (failed and run.memory_limit_hit):
        return Verdict.MEMORY_LIMIT, f"memory over {memory_mb} MiB"
    if run.signal is not None:
        return Verdict.RUNTIME_ERROR, f"killed by {_signal_name(run.signal)}"
    if run.exit_code:
        if exception and exception.get("phase") == "test" and exception.get("type") == "AssertionError":
            return Verdict.WRONG_ANSWER, "assertion failed: " + (str(exception.get("message")) or _last_line(run.stderr))
        if exception:
            return Verdict.RUNTIME_ERROR, f"{exception.get('type')}: {str(exception.get('message'))[:500]}"
        exited = run.report("exited")
        if exited:
            return Verdict.RUNTIME_ERROR, f"the program exited ({exited.get('code')}) before the {exited.get('phase')} finished"
        return Verdict.RUNTIME_ERROR, f"exit code {run.exit_code}: {_last_line(run.stderr)}"
    return None


def _is_float_token(token: bytes) -> bool:
    return _FLOAT_TOKEN.fullmatch(token) is not None


def tokens_match(actual: bytes, expected: bytes, tolerance: values.Tolerance | None = None) -> tuple[bool, str]:
    """Compare outputs token by token; see the module docstring. Returns (match, why not)."""
    got, want = actual.split(), expected.split()
    for index, (g, w) in enumerate(zip(got, want)):
        if g == w:
            continue
        if _is_float_token(w):
            try:
                got_value, want_value = float(g), float(w)
                if got_value == want_value or (tolerance is not None and math.isclose(
                        got_value, want_value, rel_tol=tolerance[0], abs_tol=tolerance[1])):
                    continue
            except ValueError:
                pass
        return False, f"token {index + 1}: expected {w[:80].decode('utf-8', 'replace')!r}, got {g[:80].decode('utf-8', 'replace')!r}"
    if len(got) != len(want):
        return False, f"expected {len(want)} tokens, got {len(got)}"
    return True, ""


def values_match(actual: Any, expected: Any, tolerance: values.Tolerance | None = None) -> bool:
    """Equality of JSON values from `call` mode: `values.same` (floats within `tolerance` only
    where the test asks for one and the expected value is a float, `2.0` for an expected `2`,
    `True != 1`); a JSON object is a dict."""
    return values.same(actual, expected, tolerance)


def _preview(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 120 else text[:117] + "..."


def plan_verdict(run: Execution, plan: Plan, nonce: str) -> tuple[Verdict, str]:
    """An assert-mode test run as calls (`sandbox/assertions.py`): every call must have returned
    a plain value, every converted assert must hold on those values here, and the harness must
    have reported the end of the whole test; a program that ended before that is not accepted."""
    got: dict[int, Any] = {}
    for report in run.reports:
        index = report.get("index")
        if type(index) is not int or index in got or not 0 <= index < len(plan.calls):
            continue
        if report.get("kind") == "unserializable":
            return Verdict.WRONG_ANSWER, f"call {index + 1} returned an object that is not a plain value: {str(report.get('message'))[:300]}"
        if report.get("kind") == "value" and report.get("nonce") == nonce:
            try:
                got[index] = values.decode(report.get("value"))
            except (ValueError, TypeError, RecursionError):
                return Verdict.WRONG_ANSWER, f"call {index + 1} returned a value that cannot be read"
    if len(got) < len(plan.calls):
        # The harness reports the values together once every call returned.
        return Verdict.RUNTIME_ERROR, f"the program ended before its {len(plan.calls)} test calls had all returned"
    results = [got[i] for i in range(len(plan.calls))]
    for check in plan.checks:
        if not check.holds(results):
            return Verdict.WRONG_ANSWER, f"assertion failed: {check.source[:300]}"
    if not any(r.get("kind") == "passed" and r.get("nonce") == nonce for r in run.reports):
        return Verdict.RUNTIME_ERROR, "the program ended before the tests finished"
    return Verdict.ACCEPTED, ""


def test_verdict(mode: str, run: Execution, test: Any, nonce: str, cpu_s: float, memory_mb: int,
                 tolerance: values.Tolerance | None = None) -> tuple[Verdict, str]:
    """The verdict of one test: a limit or crash if any, else the mode's comparison."""
    failed = limit_verdict(run, cpu_s, memory_mb)
    if failed is not None:
        return failed
    if mode == "checks":
        return plan_verdict(run, test, nonce)
    if mode == "stdio":
        ok, why = tokens_match(run.stdout, test.output.encode(), tolerance)
        return (Verdict.ACCEPTED, "") if ok else (Verdict.WRONG_ANSWER, why)
    if mode == "call":
        unserializable = run.report("unserializable")
        if unserializable:
            return Verdict.WRONG_ANSWER, f"returned a value that is not JSON: {unserializable.get('message')}"
        value = next((r for r in run.reports if r.get("kind") == "value" and r.get("nonce") == nonce), None)
        if value is None:
            return Verdict.RUNTIME_ERROR, "the program ended before the function returned"
        if values_match(value.get("value"), test.expected, tolerance):
            return Verdict.ACCEPTED, ""
        return Verdict.WRONG_ANSWER, f"expected {_preview(test.expected)}, got {_preview(value.get('value'))}"
    passed = any(r.get("kind") == "passed" and r.get("nonce") == nonce for r in run.reports)
    if passed:
        return Verdict.ACCEPTED, ""
    return Verdict.RUNTIME_ERROR, "the program ended before the tests finished"

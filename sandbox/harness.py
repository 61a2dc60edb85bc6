"""What runs inside a forked Python execution, after the sandbox is in place (standard library only).

The program is compiled and run here, in the child, never in the executor, so even a program
that crashes the compiler costs only this run. Modes:

- `stdio`: run the program as `__main__`; the verdict comes from its stdout.
- `call`: run the program, call `entry_point(*args, **kwargs)`, and report the return value as JSON
  on fd 3 (tuples become lists); the service compares it with the expected value, which never
  enters the sandbox.
- `assert`: run the program, then the test statements; report `passed` on fd 3 when they finish.
- `checks` (an assert-mode test converted by the service, `sandbox/assertions.py`): run the
  program and the test's imports, make each call, report each value as a plain value
  (`sandbox/values.py`) with its index, run what of the test could not be converted, then report
  `passed`. The expected values of the converted asserts never enter this process.

Reports on fd 3 that claim success carry the run's nonce, so a program that exits early with
status 0 (`os._exit(0)` before the tests) is not taken for a pass. A program can still read the
nonce from its own memory: this stops accidental and naive early exits, not a determined attacker
of what runs in this process; a forged `value` report gains nothing without the expected value,
which stays in the service (`call` mode and the converted asserts of `checks`).
"""

from __future__ import annotations

import builtins
import io
import json
import os
import sys
import traceback
from typing import Any

from . import values


def _report(kind: str, **fields: Any) -> None:
    line = json.dumps({"kind": kind, **fields}) + "\n"
    try:
        os.write(3, line.encode())
    except OSError:
        pass


def _compiled(ok: bool) -> None:
    """Say on the executor's private fd 5 whether the program compiled, then close it, before
    any of the program runs: a compile error is then a fact the program cannot print its way to."""
    try:
        os.write(5, b"c" if ok else b"e")
        os.close(5)
    except OSError:
        pass


def _write_reports(reports: list[dict[str, Any]]) -> None:
    try:
        os.write(3, "".join(json.dumps(r) + "\n" for r in reports).encode())
    except OSError:
        pass


def _json_ready(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return [_json_ready(v) for v in value]
    if isinstance(value, dict):
        return {str(k) if not isinstance(k, str) else k: _json_ready(v) for k, v in value.items()}
    if isinstance(value, (set, frozenset)):
        items = [_json_ready(v) for v in value]
        try:
            return sorted(items)
        except TypeError:
            return items
    if value is None or isinstance(value, (bool, int, float, str)):
        # int/float subclasses serialise by their real value, so an always-equal trick gains nothing.
        return value
    raise TypeError(f"a {type(value).__name__} is not a JSON value")


def _fresh_std_streams() -> None:
    sys.stdin = sys.__stdin__ = io.TextIOWrapper(io.BufferedReader(io.FileIO(0, "r", closefd=False)), encoding="utf-8", errors="replace")
    sys.stdout = sys.__stdout__ = io.TextIOWrapper(io.BufferedWriter(io.FileIO(1, "w", closefd=False)), encoding="utf-8", errors="backslashreplace")
    sys.stderr = sys.__stderr__ = io.TextIOWrapper(io.FileIO(2, "w", closefd=False), encoding="utf-8", errors="backslashreplace", write_through=True)


def _exit(code: int) -> None:
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except Exception:  # noqa: BLE001 - a closed or broken stream must not change the exit code
        pass
    os._exit(code)


def run_python(header: dict[str, Any], blobs: dict[str, bytes], env: dict[str, str]) -> None:
    """Never returns: exits 0 on a normal end, 1 on an uncaught exception, or the program's code."""
    os.environ.clear()
    os.environ.update(env)
    sys.argv = ["solution.py"]
    sys.set_int_max_str_digits(0)  # judges of Python < 3.11 print big integers; so do we
    _fresh_std_streams()
    mode, nonce = header.get("mode", "stdio"), header.get("nonce", "")
    try:
        program = compile(blobs.pop("code", b""), "solution.py", "exec")
    except (SyntaxError, ValueError, OverflowError, MemoryError, RecursionError) as exc:
        _compiled(False)
        traceback.print_exception(exc, limit=0)
        _report("compile_error", type=type(exc).__name__, message=str(exc)[:2000])
        _exit(1)
    _compiled(True)
    scope: dict[str, Any] = {"__name__": "__main__", "__builtins__": builtins, "__file__": "solution.py"}
    phase = "program"
    try:
        exec(program, scope)
        if mode == "call":
            phase = "call"
            function = scope.get(header["entry_point"])
            if not callable(function):
                raise NameError(f"the program defines no function {header['entry_point']!r}")
            call = json.loads(blobs.get("payload", b"{}"))
            value = function(*call.get("args", []), **call.get("kwargs", {}))
            try:
                ready = _json_ready(value)
            except TypeError as exc:
                _report("unserializable", message=str(exc))
                _exit(0)
            _report("value", nonce=nonce, value=ready)
        elif mode == "checks":
            plan = json.loads(blobs.get("payload", b"{}"))
            phase = "test"
            if plan.get("setup"):
                exec(compile(plan["setup"], "test.py", "exec"), scope)
            phase = "call"
            reports = []  # written at once: a run that dies half-way is judged by how it died
            for index, call in enumerate(plan.get("calls", [])):
                function = scope.get(call["name"])
                if not callable(function):
                    raise NameError(f"name {call['name']!r} is not defined")
                value = function(*values.decode(call["args"]), **{k: values.decode(v) for k, v in call["kwargs"].items()})
                if call.get("truth"):
                    value = bool(value)
                try:
                    reports.append({"kind": "value", "nonce": nonce, "index": index, "value": values.encode(value)})
                except (TypeError, ValueError, RecursionError) as exc:
                    reports.append({"kind": "unserializable", "index": index, "message": str(exc)[:500]})
            phase = "test"
            if plan.get("script"):
                _write_reports(reports)
                reports = []
                exec(compile(plan["script"], "test.py", "exec"), scope)
            reports.append({"kind": "passed", "nonce": nonce})
            _write_reports(reports)
        elif mode == "assert":
            phase = "test"
            exec(compile(blobs.get("payload", b""), "test.py", "exec"), scope)
            _report("passed", nonce=nonce)
    except SystemExit as exc:
        if mode != "stdio":
            _report("exited", phase=phase, code=str(exc.code)[:200])
            _exit(1)
        if exc.code is None or isinstance(exc.code, int):
            _exit(exc.code or 0)
        print(exc.code, file=sys.stderr)
        _exit(1)
    except BaseException as exc:  # noqa: BLE001 - the program's failure, reported as such
        try:
            traceback.print_exception(exc)
        except BaseException:  # noqa: BLE001 - e.g. MemoryError while formatting
            pass
        _report("exception", phase=phase, type=type(exc).__name__, message=str(exc)[:2000])
        _exit(1)
    _exit(0)

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
  (`sandbox/values.py`) with its index, then report `passed`. The expected values of the converted
  asserts never enter this process. What of the test could not be converted runs apart from the
  program (`_checks_apart`): this process forks the program into a child and runs those
  statements itself, calling the child for the program's values.

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
import signal
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


def _serve_calls(program: Any, setup: str, requests: int, answers: int) -> None:
    """The program's side of `_checks_apart` (never returns): run the program and the test's
    imports, then answer each call (name, tagged arguments) with a tagged plain value."""
    os.close(3)  # the report channel belongs to the trusted process alone
    out = os.fdopen(answers, "w", encoding="utf-8")
    incoming = os.fdopen(requests, "r", encoding="utf-8")

    def answer(**message: Any) -> None:
        out.write(json.dumps(message) + "\n")
        out.flush()

    scope: dict[str, Any] = {"__name__": "__main__", "__builtins__": builtins, "__file__": "solution.py"}
    try:
        exec(program, scope)
        if setup:
            exec(compile(setup, "test.py", "exec"), scope)
    except SystemExit as exc:
        answer(exited=str(exc.code)[:200])
        _exit(1)
    except BaseException as exc:  # noqa: BLE001 - the program's failure, reported as such
        traceback.print_exception(exc)
        answer(exception=type(exc).__name__, message=str(exc)[:2000])
        _exit(1)
    answer(ready=True)
    for line in incoming:
        call = json.loads(line)
        try:
            function = scope.get(call["name"])
            if not callable(function):
                raise NameError(f"name {call['name']!r} is not defined")
            args = values.decode(call["args"])
            value = function(*args, **{k: values.decode(v) for k, v in call["kwargs"].items()})
            if call.get("truth"):
                value = bool(value)
        except SystemExit as exc:
            answer(exited=str(exc.code)[:200])
            _exit(1)
        except BaseException as exc:  # noqa: BLE001
            traceback.print_exception(exc)
            answer(exception=type(exc).__name__, message=str(exc)[:2000])
            _exit(1)
        try:
            answer(value=values.encode(value), args=values.encode(args))
        except (TypeError, ValueError, RecursionError) as exc:
            answer(unserializable=str(exc)[:500])
    _exit(0)


class _ProgramFailed(Exception):
    """The program's process raised, exited or answered with something that is not a plain value."""

    def __init__(self, report: dict[str, Any]) -> None:
        super().__init__(report.get("message", ""))
        self.report = report


class _Program:
    """The trusted process's end of the pipe to the program's process."""

    def __init__(self, requests: int, answers: int) -> None:
        self.out = os.fdopen(requests, "w", encoding="utf-8")
        self.incoming = os.fdopen(answers, "r", encoding="utf-8")

    def receive(self, phase: str) -> Any:
        line = self.incoming.readline()
        try:
            message = json.loads(line) if len(line) < (64 << 20) else None
        except ValueError:
            message = None
        if not isinstance(message, dict) or not message:
            raise _ProgramFailed({"kind": "exited", "phase": phase, "code": "the program's process ended or answered out of turn"})
        kind, body = next(iter(message.items()))
        if kind == "exited":
            raise _ProgramFailed({"kind": "exited", "phase": phase, "code": str(body)[:200]})
        if kind == "exception":
            raise _ProgramFailed({"kind": "exception", "phase": phase, "type": str(body)[:200],
                                  "message": str(message.get("message", ""))[:2000]})
        if kind == "unserializable":
            raise _ProgramFailed({"kind": "unserializable", "message": str(body)[:500]})
        if kind == "ready":
            return None
        if kind == "value":
            try:
                return values.decode(body), values.decode(message.get("args", []))
            except (ValueError, TypeError, RecursionError):
                raise _ProgramFailed({"kind": "unserializable", "message": "a value that cannot be read"}) from None
        raise _ProgramFailed({"kind": "exited", "phase": phase, "code": "the program's process answered out of turn"})

    def call(self, name: str, args: Any, kwargs: dict[str, Any], truth: bool = False) -> tuple[Any, Any]:
        """(the value returned, the positional arguments as the call left them)."""
        try:
            self.out.write(json.dumps({"name": name, "args": args, "kwargs": kwargs, "truth": truth}) + "\n")
            self.out.flush()
        except OSError:
            pass  # the program's process is gone; receive() says so
        return self.receive("call")


def _update(original: Any, changed: Any) -> None:
    """Give a mutable argument the content the program's call left in its copy (`sort(lst)` in place)."""
    if type(original) is list and type(changed) is list:
        original[:] = changed
    elif type(original) is dict and type(changed) is dict:
        original.clear()
        original.update(changed)
    elif type(original) is set and type(changed) in (set, frozenset):
        original.clear()
        original.update(changed)


def _proxy(program: _Program, name: str) -> Any:
    def call(*args: Any, **kwargs: Any) -> Any:
        value, changed = program.call(name, values.encode(list(args)), {k: values.encode(v) for k, v in kwargs.items()})
        if type(changed) is list and len(changed) == len(args):
            for original, after in zip(args, changed):
                _update(original, after)
        return value
    call.__name__ = call.__qualname__ = name
    return call


def _undumpable() -> None:
    """PR_SET_DUMPABLE 0: a process of the same uid (the program's) can then neither open this
    one's /proc files (memory, fds) nor trace it, so it can neither read the nonce nor write fd 3."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(4, 0, 0, 0, 0) != 0:  # PR_SET_DUMPABLE
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_DUMPABLE)")


def _checks_apart(program: Any, plan: dict[str, Any], nonce: str) -> None:
    """A converted test that keeps statements of its own (random inputs, helpers, loops): they run
    here, in a process where none of the program ever runs, with the test's `prelude` (the
    trusted helpers of the prompt) and each program function it calls (`proxied`) a proxy to a
    child process that runs the program. Values cross as tagged plain values, so the program can
    patch nothing the test uses (helpers, `math`, builtins, `random`). Never returns."""
    _undumpable()
    requests_read, requests_write = os.pipe()
    answers_read, answers_write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(requests_write)
        os.close(answers_read)
        _serve_calls(program, plan.get("setup", ""), requests_read, answers_write)
    os.close(requests_read)
    os.close(answers_write)
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)  # a program gone is an EOF that receive() reports, not our death
    del program
    child = _Program(requests_write, answers_read)
    phase = "program"
    try:
        child.receive(phase)
        phase = "call"
        reports = []
        for index, call in enumerate(plan.get("calls", [])):
            try:
                value, _ = child.call(call["name"], call["args"], call["kwargs"], bool(call.get("truth")))
            except _ProgramFailed as failed:
                if failed.report["kind"] == "unserializable":
                    failed.report["index"] = index
                raise
            reports.append({"kind": "value", "nonce": nonce, "index": index, "value": values.encode(value)})
        _write_reports(reports)
        phase = "test"
        scope: dict[str, Any] = {"__name__": "__main__", "__builtins__": builtins, "__file__": "test.py"}
        if plan.get("prelude"):
            exec(compile(plan["prelude"], "prelude.py", "exec"), scope)
        for name in plan.get("proxied", []):
            scope[name] = _proxy(child, name)
        exec(compile(plan["script"], "test.py", "exec"), scope)
        _report("passed", nonce=nonce)
    except _ProgramFailed as failed:
        report = failed.report
        if report["kind"] == "unserializable" and "index" not in report:  # a call of the test's own statements
            report = {"kind": "exception", "phase": "test", "type": "AssertionError",
                      "message": "the program returned an object that is not a plain value: " + report["message"]}
        _report(**report)
        _exit(1)
    except BaseException as exc:  # noqa: BLE001 - the test failed (an assert) or could not run
        try:
            traceback.print_exception(exc)
        except BaseException:  # noqa: BLE001
            pass
        _report("exception", phase=phase, type=type(exc).__name__, message=str(exc)[:2000])
        _exit(1)
    _exit(0)


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
        if mode == "checks":
            plan = json.loads(blobs.get("payload", b"{}"))
            if plan.get("script"):
                _checks_apart(program, plan, nonce)  # never returns
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
            reports.append({"kind": "passed", "nonce": nonce})  # a plan with a script went to _checks_apart
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

"""Serving `/v1/run` and `/v1/judge`: limits, compile once (cached), run each test on a slot, judge.

Compilation happens inside the sandbox too (a compiler reading `#include "/etc/shadow"` must see
the sandbox's files, not ours). Its result is cached in the service, keyed by language, compiler
argv and source, so the same program in the next request (the same completion scored twice, a
GRPO group with duplicates) is not compiled again; concurrent identical compiles share one.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import secrets
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from rewardstack.sandbox.assertions import plan_for, shadowed_builtins
from rewardstack.sandbox.executors import ExecutorFailed, ExecutorPool
from rewardstack.sandbox.judging import Execution, limit_verdict, test_verdict
from rewardstack.sandbox.languages import Language, available_languages
from rewardstack.sandbox.metrics import SandboxMetrics
from rewardstack.sandbox.models import (
    CallTest,
    JudgeRequest,
    JudgeResult,
    Limits,
    RunRequest,
    RunResult,
    RunStatus,
    StdioTest,
    TestResult,
    Verdict,
)
from rewardstack.sandbox.settings import SandboxSettings

COMPILE_OUTPUT_BYTES = 256 * 1024
COMPILE_PROCESSES = 64  # javac is a JVM: a dozen threads before it compiles anything
# Compilers are bounded by the data-segment limit (compile_memory_mb), not by address space (javac's JVM).
_COMPILER = Language(source_name="", run_argv=(), unlimited_address_space=True)


def _json_bytes(text: str) -> int:
    return len(json.dumps(text, ensure_ascii=False).encode()) - 2


def bounded_text(data: bytes, max_bytes: int) -> str:
    """`data` as text whose JSON form in the reply is at most `max_bytes` bytes.

    Invalid UTF-8 becomes U+FFFD (three bytes each) and control bytes six (`\\u0001`), so 16 MiB
    of output could otherwise make a reply of 50 MB and more; the cut is marked.
    """
    text = data.decode("utf-8", "replace")
    size = _json_bytes(text)
    if size <= max_bytes:
        return text
    marker = "\n[output cut: over the reply's byte limit]"
    budget = max(0, max_bytes - _json_bytes(marker))
    keep = len(text)
    while keep and size > budget:
        keep = min(keep - 1, keep * budget // size)
        size = _json_bytes(text[:keep])
    return text[:keep] + marker


class InvalidRequest(ValueError):
    """A request this service cannot serve as asked (a limit above its ceiling, a language its
    backend lacks); `field` names the part to change. Answered 422."""

    def __init__(self, field: str, detail: str) -> None:
        self.field = field
        super().__init__(f"{field}: {detail}")


@dataclass(frozen=True)
class RunLimits:
    cpu_s: float
    wall_s: float
    memory_mb: int
    output_bytes: int

    def wire(self, processes: int, language: Language | None) -> dict[str, Any]:
        """The executor's limits; `language` None is Python (address space = memory)."""
        memory = self.memory_mb + (language.overhead_mb if language else 0)
        space = language.address_space_mb(memory) if language else memory
        wire = {"cpu_s": self.cpu_s, "wall_s": self.wall_s, "memory_mb": memory, "address_space_mb": space,
                "output_bytes": self.output_bytes, "processes": processes}
        if language is not None and language.stack_mb is not None:
            wire["stack_mb"] = language.stack_mb
        return wire


@dataclass(frozen=True)
class Program:
    """What every execution of one request's program sends: the header part and the blobs."""

    header: dict[str, Any]
    blobs: dict[str, bytes]
    language: Language | None  # None: Python in the warm interpreter


@dataclass(frozen=True)
class CompileOutcome:
    binary: bytes | None
    output: str
    sandbox_error: bool = False

    @property
    def ok(self) -> bool:
        return self.binary is not None


class CompiledCache:
    """LRU of compile outcomes, bounded by total bytes; failures to compile are cached too."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._entries: OrderedDict[str, CompileOutcome] = OrderedDict()
        self._bytes = 0

    @staticmethod
    def _size(outcome: CompileOutcome) -> int:
        return len(outcome.binary or b"") + len(outcome.output)

    def get(self, key: str) -> CompileOutcome | None:
        outcome = self._entries.get(key)
        if outcome is not None:
            self._entries.move_to_end(key)
        return outcome

    def put(self, key: str, outcome: CompileOutcome) -> None:
        size = self._size(outcome)
        if size > self.max_bytes or key in self._entries:
            return
        self._entries[key] = outcome
        self._bytes += size
        while self._bytes > self.max_bytes:
            _, old = self._entries.popitem(last=False)
            self._bytes -= self._size(old)

    def __len__(self) -> int:
        return len(self._entries)


class Runner:
    def __init__(self, settings: SandboxSettings, pool: ExecutorPool, metrics: SandboxMetrics) -> None:
        self.settings = settings
        self.pool = pool
        self.metrics = metrics
        self.specs = available_languages(settings)
        self.languages = set(settings.container_languages) if settings.backend == "containers" else {"python", *self.specs}
        self.cache = CompiledCache(settings.compiled_cache_mb * 1024 * 1024)
        self._compiling: dict[str, asyncio.Future[CompileOutcome]] = {}
        self._compile_slots = asyncio.Semaphore(max(1, settings.slots - 1))

    # --- limits ---------------------------------------------------------------------------------

    def check_language(self, language: str) -> None:
        if language not in self.languages:
            raise InvalidRequest("language", f"{language!r} is not available on this sandbox (backend {self.settings.backend}); "
                                             f"available: {', '.join(sorted(self.languages))}")

    def resolve_limits(self, limits: Limits) -> RunLimits:
        s = self.settings
        cpu_s = limits.cpu_s if limits.cpu_s is not None else s.default_cpu_s
        if cpu_s > s.max_cpu_s:
            raise InvalidRequest("limits.cpu_s", f"at most {s.max_cpu_s:g}")
        wall_s = limits.wall_s if limits.wall_s is not None else (s.default_wall_s or 3 * cpu_s + 2)
        if wall_s > s.max_wall_s:
            raise InvalidRequest("limits.wall_s", f"at most {s.max_wall_s:g}")
        memory_mb = limits.memory_mb if limits.memory_mb is not None else s.default_memory_mb
        if memory_mb > s.max_memory_mb:
            raise InvalidRequest("limits.memory_mb", f"at most {s.max_memory_mb}")
        output_kb = limits.output_kb if limits.output_kb is not None else s.default_output_kb
        if output_kb > s.max_output_kb:
            raise InvalidRequest("limits.output_kb", f"at most {s.max_output_kb}")
        return RunLimits(cpu_s, max(wall_s, cpu_s), memory_mb, output_kb * 1024)

    # --- compile --------------------------------------------------------------------------------

    async def compile(self, language: str, code: str, owner: object) -> CompileOutcome:
        spec = self.specs[language]
        key = hashlib.sha256(f"{language}\0{spec.cache_key}\0".encode() + code.encode()).hexdigest()
        cached = self.cache.get(key)
        if cached is not None:
            self.metrics.compile_cache.labels("hit").inc()
            return cached
        pending = self._compiling.get(key)
        if pending is not None:
            self.metrics.compile_cache.labels("shared").inc()
            return await asyncio.shield(pending)
        self.metrics.compile_cache.labels("miss").inc()
        future: asyncio.Future[CompileOutcome] = asyncio.get_running_loop().create_future()
        self._compiling[key] = future
        try:
            outcome = await self._compile(spec, code, owner)
            if not outcome.sandbox_error:
                self.cache.put(key, outcome)
            future.set_result(outcome)
            return outcome
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: sharers re-raise it themselves
            raise
        finally:
            del self._compiling[key]

    async def _compile(self, spec: Language, code: str, owner: object) -> CompileOutcome:
        s = self.settings
        assert spec.compile_argv is not None
        limits = RunLimits(s.compile_cpu_s, s.compile_wall_s, s.compile_memory_mb, COMPILE_OUTPUT_BYTES)
        header = {"op": "run", "kind": "exec", "path": spec.compile_argv[0], "argv": list(spec.compile_argv),
                  "output_name": spec.artifact_name, "limits": limits.wire(COMPILE_PROCESSES, _COMPILER)}
        try:
            async with self._compile_slots:  # compiles never take every slot: runs keep one
                reply, blobs = await self.pool.execute(header, {f"file:{spec.source_name}": code.encode()}, owner)
        except ExecutorFailed as exc:
            return CompileOutcome(None, str(exc), sandbox_error=True)
        run = Execution.from_reply(reply, blobs)
        output = (run.stderr + run.stdout).decode("utf-8", "replace")
        if run.exit_code == 0 and "binary" in blobs:
            return CompileOutcome(blobs["binary"], output)
        failed = limit_verdict(run, limits.cpu_s, limits.memory_mb)
        if failed is not None and failed[0] is Verdict.SANDBOX_ERROR:
            return CompileOutcome(None, failed[1], sandbox_error=True)
        why = failed[1] + "\n" if failed is not None and failed[0] is not Verdict.RUNTIME_ERROR else ""
        return CompileOutcome(None, why + output)

    # --- execute --------------------------------------------------------------------------------

    def _program(self, language: str, code: str, artifact: bytes | None, limits: RunLimits) -> Program:
        if language == "python":
            return Program({"kind": "python"}, {"code": code.encode()}, None)
        spec = self.specs[language]
        argv = spec.argv(limits.memory_mb)
        if spec.native:
            assert artifact is not None
            return Program({"kind": "exec", "argv": argv}, {"binary": artifact}, spec)
        name, data = (spec.artifact_name, artifact) if spec.compiled else (spec.source_name, code.encode())
        assert name is not None and data is not None
        return Program({"kind": "exec", "path": argv[0], "argv": argv}, {f"file:{name}": data}, spec)

    async def _execute(self, program: Program, limits: RunLimits, *, mode: str, stdin: bytes, payload: bytes | None,
                       entry_point: str | None, nonce: str, language: str, owner: object) -> Execution:
        header = dict(program.header, op="run", mode=mode, entry_point=entry_point, nonce=nonce,
                      limits=limits.wire(self.settings.processes, program.language))
        blobs = dict(program.blobs, stdin=stdin)
        if payload is not None:
            blobs["payload"] = payload
        reply, out = await self.pool.execute(header, blobs, owner)
        run = Execution.from_reply(reply, out)
        self.metrics.run_seconds.labels(language).observe(run.wall_ms / 1000)
        return run

    # --- /v1/run --------------------------------------------------------------------------------

    async def run(self, request: RunRequest) -> RunResult:
        self.check_language(request.language)
        limits = self.resolve_limits(request.limits)
        compiled = request.language != "python" and self.specs[request.language].compiled
        self.pool.admit(1 + int(compiled))
        owner = object()  # this request's share of the slots
        binary = None
        if compiled:
            outcome = await self.compile(request.language, request.code, owner)
            if not outcome.ok:
                status = RunStatus.SANDBOX_ERROR if outcome.sandbox_error else RunStatus.COMPILE_ERROR
                self.metrics.runs.labels(request.language, status.value).inc()
                return RunResult(status=status, exit_code=None, signal=None, stdout="", stderr=outcome.output,
                                 cpu_ms=0, wall_ms=0, memory_kb=0)
            binary = outcome.binary
        program = self._program(request.language, request.code, binary, limits)
        try:
            run = await self._execute(program, limits, mode="stdio", stdin=request.stdin.encode(), payload=None,
                                      entry_point=None, nonce="", language=request.language, owner=owner)
        except ExecutorFailed as exc:
            self.metrics.runs.labels(request.language, RunStatus.SANDBOX_ERROR.value).inc()
            return RunResult(status=RunStatus.SANDBOX_ERROR, exit_code=None, signal=None, stdout="", stderr=str(exc),
                             cpu_ms=0, wall_ms=0, memory_kb=0)
        failed = limit_verdict(run, limits.cpu_s, limits.memory_mb)
        status = RunStatus.OK if failed is None else RunStatus(failed[0].value if failed[0] is not Verdict.WRONG_ANSWER else "runtime_error")
        self.metrics.runs.labels(request.language, status.value).inc()
        return RunResult(status=status, exit_code=run.exit_code, signal=run.signal,
                         stdout=bounded_text(run.stdout, limits.output_bytes), stderr=bounded_text(run.stderr, limits.output_bytes),
                         cpu_ms=round(run.cpu_ms, 3), wall_ms=round(run.wall_ms, 3), memory_kb=run.memory_kb)

    # --- /v1/judge ------------------------------------------------------------------------------

    async def judge(self, request: JudgeRequest) -> JudgeResult:
        self.check_language(request.language)
        limits = self.resolve_limits(request.limits)
        compiled = request.language != "python" and self.specs[request.language].compiled
        self.pool.admit(len(request.tests) + int(compiled))
        owner = object()  # this request's share of the slots
        binary = None
        compile_output = ""
        if compiled:
            outcome = await self.compile(request.language, request.code, owner)
            compile_output = outcome.output[:COMPILE_OUTPUT_BYTES]
            if not outcome.ok:
                verdict = Verdict.SANDBOX_ERROR if outcome.sandbox_error else Verdict.COMPILE_ERROR
                return self._result([TestResult(verdict=verdict, detail=outcome.output[:2000])] * len(request.tests),
                                    request, compile_output)
            binary = outcome.binary
        program = self._program(request.language, request.code, binary, limits)
        shadowed = shadowed_builtins(request.code) if request.mode == "assert" else frozenset()

        async def one(index: int) -> TestResult:
            return await self._judge_test(program, request, index, limits, owner, shadowed)

        results: list[TestResult] = []
        if request.stop_on_first_failure:
            for index in range(len(request.tests)):
                results.append(await one(index))
                if results[-1].verdict is not Verdict.ACCEPTED:
                    break
            skipped = TestResult(verdict=Verdict.SKIPPED, detail="not run: an earlier test failed")
            results += [skipped] * (len(request.tests) - len(results))
        else:
            # The first test doubles as the syntax check of a Python program: a program that does
            # not compile is not forked once per test.
            results.append(await one(0))
            if results[0].verdict is Verdict.COMPILE_ERROR:
                results += [results[0]] * (len(request.tests) - 1)
            else:
                results += await asyncio.gather(*(one(i) for i in range(1, len(request.tests))))
        return self._result(results, request, compile_output)

    async def _judge_test(self, program: Program, request: JudgeRequest,
                          index: int, limits: RunLimits, owner: object, shadowed: frozenset[str]) -> TestResult:
        test: Any = request.tests[index]
        stdin, payload, mode = b"", None, request.mode
        if isinstance(test, StdioTest):
            stdin = test.input.encode()
        elif isinstance(test, CallTest):
            payload = json.dumps({"args": test.args, "kwargs": test.kwargs}).encode()
        else:
            # Asserts of the common shape become calls checked here (sandbox/assertions.py).
            test = plan_for(test, shadowed, request.test_prelude)
            payload, mode = test.payload, "checks"
        nonce = secrets.token_hex(16)
        try:
            run = await self._execute(program, limits, mode=mode, stdin=stdin, payload=payload,
                                      entry_point=request.entry_point, nonce=nonce, language=request.language, owner=owner)
        except ExecutorFailed as exc:
            result = TestResult(verdict=Verdict.SANDBOX_ERROR, detail=str(exc))
        else:
            tolerance = request.float_tolerance
            verdict, detail = test_verdict(mode, run, test, nonce, limits.cpu_s, limits.memory_mb,
                                           None if tolerance is None else (tolerance.rel_tol, tolerance.abs_tol))
            result = TestResult(verdict=verdict, cpu_ms=round(run.cpu_ms, 3), wall_ms=round(run.wall_ms, 3),
                                memory_kb=run.memory_kb, exit_code=run.exit_code, signal=run.signal, detail=detail)
        self.metrics.runs.labels(request.language, result.verdict.value).inc()
        return result

    @staticmethod
    def _result(results: list[TestResult], request: JudgeRequest, compile_output: str) -> JudgeResult:
        passed = sum(r.verdict is Verdict.ACCEPTED for r in results)
        if any(r.verdict is Verdict.SANDBOX_ERROR for r in results):
            verdict = Verdict.SANDBOX_ERROR
        elif passed == len(results):
            verdict = Verdict.ACCEPTED
        else:
            verdict = next(r.verdict for r in results if r.verdict not in (Verdict.ACCEPTED, Verdict.SKIPPED))
        return JudgeResult(verdict=verdict, passed=passed, total=len(results), tests=results, compile_output=compile_output)

"""Wire models of the sandbox API: `POST /v1/run` and `POST /v1/judge`. Inputs refuse unknown fields."""

from __future__ import annotations

from enum import Enum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Language = Literal["python", "cpp", "c", "java", "javascript"]
Mode = Literal["stdio", "call", "assert"]


class Verdict(str, Enum):
    """The outcome of one test or of a whole judgement.

    All but `sandbox_error` are verdicts about the program; `sandbox_error` is the service's own
    failure and says nothing about it (the `code` scorer turns it into status `error`, never 0).
    `skipped` marks tests not run after a failure when `stop_on_first_failure` is set.
    """

    ACCEPTED = "accepted"
    WRONG_ANSWER = "wrong_answer"
    TIME_LIMIT = "time_limit"
    MEMORY_LIMIT = "memory_limit"
    OUTPUT_LIMIT = "output_limit"
    RUNTIME_ERROR = "runtime_error"
    COMPILE_ERROR = "compile_error"
    SANDBOX_ERROR = "sandbox_error"
    SKIPPED = "skipped"


class Limits(BaseModel):
    """Per-execution limits; unset fields take the service's defaults, and each has a ceiling."""

    model_config = ConfigDict(extra="forbid")

    cpu_s: float | None = Field(default=None, gt=0, description="CPU seconds; decides `time_limit`.")
    wall_s: float | None = Field(default=None, gt=0, description="Wall-clock backstop (a sleeping program).")
    memory_mb: int | None = Field(default=None, ge=16, description="Address space, MiB.")
    output_kb: int | None = Field(default=None, ge=1, description="stdout + stderr, KiB; enforced while reading.")


class RunRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    language: Language
    code: str
    stdin: str = ""
    limits: Limits = Field(default_factory=Limits)


class RunStatus(str, Enum):
    """How a single `/v1/run` execution ended."""

    OK = "ok"
    RUNTIME_ERROR = "runtime_error"
    TIME_LIMIT = "time_limit"
    MEMORY_LIMIT = "memory_limit"
    OUTPUT_LIMIT = "output_limit"
    COMPILE_ERROR = "compile_error"
    SANDBOX_ERROR = "sandbox_error"


class RunResult(BaseModel):
    status: RunStatus
    exit_code: int | None
    signal: int | None
    stdout: str
    stderr: str
    cpu_ms: float
    wall_ms: float
    memory_kb: int


class StdioTest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    input: str = ""
    output: str
    weight: float = Field(default=1.0, ge=0, allow_inf_nan=False)


class CallTest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    args: list[Any] = Field(default_factory=list)
    kwargs: dict[str, Any] = Field(default_factory=dict)
    expected: Any = None
    weight: float = Field(default=1.0, ge=0, allow_inf_nan=False)


class FloatTolerance(BaseModel):
    """How close a float must be to an expected one, as `math.isclose`: only when a test asks."""

    model_config = ConfigDict(extra="forbid")

    rel_tol: float = Field(default=0.0, ge=0, le=1, allow_inf_nan=False)
    abs_tol: float = Field(default=0.0, ge=0, allow_inf_nan=False)


class JudgeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    language: Language
    code: str
    mode: Mode = "stdio"
    tests: list[StdioTest | CallTest | str] = Field(
        min_length=1,
        description="stdio: {input, output}; call: {args, kwargs, expected}; assert: Python statements run after the program.",
    )
    entry_point: str | None = Field(default=None, max_length=256, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    stop_on_first_failure: bool = Field(
        default=True,
        description="Run the tests one at a time and skip the rest after the first failure (the default, so a "
                    "failing program holds slots no longer than it must); false runs them all, in parallel after the first.",
    )
    test_prelude: str = Field(
        default="", max_length=1 << 20,
        description="assert: trusted helpers the tests call (HumanEval's prompt: `poly`, `encode_cyclic`), defined for "
                    "the tests' own statements in a process apart from the program, so the program cannot redefine them.",
    )
    limits: Limits = Field(default_factory=Limits)
    float_tolerance: FloatTolerance | None = Field(
        default=None,
        description="stdio float tokens and call-mode floats: close as math.isclose(rel_tol, abs_tol) counts as equal; "
                    "none (the default): equal as floats. Converted asserts keep Python's `==`; a test wanting closeness says so itself.",
    )

    @model_validator(mode="after")
    def _tests_match_mode(self) -> JudgeRequest:
        expected = {"stdio": StdioTest, "call": CallTest, "assert": str}[self.mode]
        shape = {"stdio": "{input, output}", "call": "{args, kwargs, expected}", "assert": "a string of Python statements"}
        if self.test_prelude and self.mode != "assert":
            raise ValueError("test_prelude: only assert-mode tests call trusted helpers")
        for index, test in enumerate(self.tests):
            if not isinstance(test, expected):
                raise ValueError(f"tests[{index}]: a {self.mode} test is {shape[self.mode]}")
        if self.mode != "stdio" and self.language != "python":
            raise ValueError(f"mode: {self.mode!r} is for python programs; use 'stdio' for {self.language}")
        if self.mode == "call" and not self.entry_point:
            raise ValueError("entry_point: required in call mode (the function to call)")
        return self


class TestResult(BaseModel):
    verdict: Verdict
    cpu_ms: float = 0.0
    wall_ms: float = 0.0
    memory_kb: int = 0
    exit_code: int | None = None
    signal: int | None = None
    detail: str = ""


class JudgeResult(BaseModel):
    verdict: Verdict
    passed: int
    total: int
    tests: list[TestResult]
    compile_output: str = ""


class LimitsInfo(BaseModel):
    """GET /v1/limits: the per-run defaults and ceilings, compile limits and slots of this replica."""

    slots: int
    default_cpu_s: float
    default_wall_s: float | None = Field(description="None: 3 x cpu_s + 2")
    default_memory_mb: int
    max_cpu_s: float
    max_wall_s: float
    max_memory_mb: int
    compile_cpu_s: float
    compile_wall_s: float
    max_queued_runs: int


class ErrorBody(BaseModel):
    code: str
    detail: str

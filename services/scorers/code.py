r"""The `code` scorer: does the program in the completion pass the item's tests in the sandbox?

The program is the last fenced code block of the completion in the wanted language (a final
block left unclosed, as when generation stops at the closing fence, counts; a fence may open
right after a tag, `<answer>```python`). It is judged by the
sandbox service (`POST /v1/judge`, see docs/sandbox.md), whose verdicts are facts about the
program; the sandbox's own failure (`sandbox_error`, an unreachable or overloaded sandbox) is
status `error` or `timeout`, never a 0 that the policy would learn from.

The item's `reference` (a dict, or the same as a JSON string) carries the tests:

    {"tests": [...], "mode": "stdio" | "call" | "assert", "entry_point": "f",
     "language": "python", "prefix": "from typing import List\n", "weights": [...],
     "limits": {"cpu_s": 2}, "float_tolerance": {"rel_tol": 1e-6, "abs_tol": 0}}

`tests` follow the mode: stdio `{"input", "output"}`, call `{"args", "expected"}`, assert Python
statements. `mode` defaults from the tests' shape; `prefix` is code put before the extracted program
(HumanEval's prompt or imports; in assert mode also the tests' trusted `test_prelude`, so a
program cannot redefine the prompt's helpers that the tests call); `weights` (or a `weight` per test) are for reward `weighted`;
`float_tolerance` is how close a float answer must be where the task allows that (default: equal).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, replace
from typing import Any, Literal

import httpx
from pydantic import Field

from rewardstack.services.scorers.types import BatchScorer, Params, Sample, Scored, ScoringContext
from rewardstack.services.settings import Settings

__all__ = ["CodeScorer", "extract_code", "open_code_scorer"]

Language = Literal["python", "cpp", "c", "java", "javascript"]
LANGUAGE_TAGS: dict[str, frozenset[str]] = {
    "python": frozenset({"python", "py", "python3", "py3"}),
    "cpp": frozenset({"cpp", "c++", "cc", "cxx"}),
    "c": frozenset({"c"}),
    "java": frozenset({"java"}),
    "javascript": frozenset({"javascript", "js", "node", "nodejs"}),
}
# An opening fence starts a line, or follows the `>` closing a tag on the same line
# (`<answer>```python`, as R1-format models write it).
_FENCE = re.compile(r"(?:^|(?<=>))[ \t]*```[ \t]*([\w+#.-]*)[^\n]*\n(.*?)(?:^[ \t]*```|\Z)", re.DOTALL | re.MULTILINE)
COMPILED = frozenset({"cpp", "c", "java"})
MAX_IN_FLIGHT = 32  # connections per sandbox replica
FALLBACK_SLOTS = 2  # per replica, when its /v1/limits cannot be read
FALLBACK_COMPILE_WALL_S = 25.0  # the sandbox's default compile wall clock (2 x 10 s CPU + 5)
REPLY_MARGIN_S = 5.0  # HTTP and judging overhead on top of the runs' own limits
RELEARN_S = 30.0  # how often the limits are asked again while a replica has not answered
MAX_OVERLOAD_WAIT_S = 600.0  # without a batch deadline, how long 429s are waited out in total


@dataclass(frozen=True)
class SandboxLimits:
    """What the scorer needs to know of a sandbox to derive an item's deadline (GET /v1/limits)."""

    slots: int = FALLBACK_SLOTS
    default_cpu_s: float = 4.0
    default_wall_s: float | None = None  # None: 3 x cpu_s + 2
    compile_wall_s: float = FALLBACK_COMPILE_WALL_S

    def wall_s(self, cpu_s: float) -> float:
        return self.default_wall_s if self.default_wall_s is not None else 3 * cpu_s + 2


def _tag_language(tag: str) -> str | None:
    tag = tag.lower()
    return next((lang for lang, tags in LANGUAGE_TAGS.items() if tag in tags), None)


def extract_code(completion: str, language: str | None) -> tuple[str, str] | None:
    r"""(language, code) of the last fenced block in `language`; None when there is none.

    An untagged block counts as `language` (or as Python when no language is wanted) when no
    tagged block matches. Blocks tagged with another language (```text, ```bash) never count.

    >>> extract_code("try:\n```python\nprint(1)\n```\nbetter:\n```python\nprint(2)\n```", None)
    ('python', 'print(2)\n')
    >>> extract_code("```cpp\nint main(){}\n```\n```text\n42\n```", "cpp")
    ('cpp', 'int main(){}\n')
    """
    blocks = [(m.group(1), m.group(2)) for m in _FENCE.finditer(completion)]
    tagged = [(_tag_language(tag), code) for tag, code in blocks if tag]
    for lang, code in reversed(tagged):
        if lang is not None and (language is None or lang == language):
            return lang, code
    untagged = [code for tag, code in blocks if not tag]
    if untagged:
        return language or "python", untagged[-1]
    return None


class BadReference(ValueError):
    """The item's reference cannot be judged: the data's fault, so the item is `unscorable`."""


@dataclass(frozen=True)
class CodeReference:
    tests: list[Any]
    mode: str
    entry_point: str | None
    language: str | None
    prefix: str
    weights: list[float]
    limits: dict[str, Any]
    float_tolerance: dict[str, float] | None = None

    @classmethod
    def parse(cls, raw: Any) -> CodeReference:
        if isinstance(raw, str):
            try:
                raw = json.loads(raw)
            except ValueError as exc:
                raise BadReference(f"reference is not JSON: {exc}") from None
        if not isinstance(raw, dict):
            raise BadReference("reference must be an object with `tests`")
        tests = raw.get("tests")
        if not isinstance(tests, list) or not tests:
            raise BadReference("reference.tests must be a non-empty list")
        mode = raw.get("mode") or cls._infer_mode(tests[0])
        if mode not in ("stdio", "call", "assert"):
            raise BadReference(f"reference.mode {mode!r}: expected stdio, call or assert")
        language = raw.get("language")
        if language is not None and language not in LANGUAGE_TAGS:
            raise BadReference(f"reference.language {language!r}: expected one of {', '.join(LANGUAGE_TAGS)}")
        weights = raw.get("weights")
        if weights is None:
            weights = [float(t.get("weight", 1.0)) if isinstance(t, dict) else 1.0 for t in tests]
        if not isinstance(weights, list) or len(weights) != len(tests) or not all(
            isinstance(w, (int, float)) and w >= 0 for w in weights
        ):
            raise BadReference("reference.weights must be one non-negative number per test")
        limits = raw.get("limits") or {}
        if not isinstance(limits, dict):
            raise BadReference("reference.limits must be an object")
        prefix = raw.get("prefix") or ""
        if not isinstance(prefix, str):
            raise BadReference("reference.prefix must be a string")
        tolerance = raw.get("float_tolerance")
        if tolerance is not None and not (isinstance(tolerance, dict) and set(tolerance) <= {"rel_tol", "abs_tol"}):
            raise BadReference("reference.float_tolerance must be an object with rel_tol and/or abs_tol")
        return cls(tests, mode, raw.get("entry_point"), language, prefix, [float(w) for w in weights], limits, tolerance)

    @staticmethod
    def _infer_mode(test: Any) -> str:
        if isinstance(test, str):
            return "assert"
        if isinstance(test, dict) and ("args" in test or "expected" in test):
            return "call"
        return "stdio"


class CodeScorer(BatchScorer):
    r"""Judge the completion's last fenced code block on the reference's tests, in the sandbox.

    Scale: reward `binary` 1.0 when every test is accepted, else 0.0; `fraction` the share of
    tests accepted; `weighted` the share of test weight accepted. 0.0 also when the completion has
    no code block in the wanted language (the model's fault). `unscorable` when the reference has
    no usable tests; `error` when the sandbox fails or cannot be reached; `timeout` only past the
    batch's own deadline or when the sandbox overran the deadline its runs' limits imply (see
    `run_budget_s`): a slow wrong program gets its verdict and 0. Never 0.0 for our own failure.
    """

    name = "code"
    version = 2

    class Params(Params):
        reward: Literal["binary", "fraction", "weighted"] = Field(
            default="binary", description="binary: all tests pass; fraction: share passed; weighted: share of test weight passed."
        )
        language: Language | None = Field(
            default=None, description="Language to extract and run; default: the reference's, else the code block's tag, else python."
        )
        stop_on_first_failure: bool | None = Field(
            default=None, description="Stop at the first failing test; default: true for reward binary, false otherwise."
        )
        cpu_s: float | None = Field(default=None, gt=0, le=60, description="CPU seconds per test (overrides the reference's limits).")
        memory_mb: int | None = Field(default=None, ge=16, le=16384, description="Memory per test, MiB (overrides the reference's).")

    def __init__(self, clients: Sequence[httpx.AsyncClient]) -> None:
        if not clients:
            raise ValueError("CodeScorer needs at least one sandbox client")
        self._clients = list(clients)
        self._next = itertools.cycle(range(len(self._clients)))
        self._limits: SandboxLimits | None = None
        self._gate: asyncio.Semaphore | None = None
        self._learning = asyncio.Lock()
        self._learned = False
        self._relearn_at = 0.0

    async def _sandbox(self) -> tuple[SandboxLimits, asyncio.Semaphore]:
        """The sandboxes' limits and the gate that keeps in flight no more judge requests than
        they have slots in all (learned from each replica's GET /v1/limits; while none answers,
        `FALLBACK_SLOTS` each, asked again at most every `RELEARN_S`)."""
        async with self._learning:
            now = asyncio.get_running_loop().time()
            if self._limits is None or self._gate is None or (not self._learned and now >= self._relearn_at):
                answers = await asyncio.gather(*(self._read_limits(c) for c in self._clients))
                known = [a for a in answers if a is not None]
                base = known[0] if known else SandboxLimits()
                slots = sum(a.slots if a is not None else FALLBACK_SLOTS for a in answers)
                self._limits = replace(base, slots=slots, compile_wall_s=max((a.compile_wall_s for a in known), default=base.compile_wall_s))
                self._gate = asyncio.Semaphore(max(1, slots))
                self._learned = len(known) == len(answers)
                self._relearn_at = now + RELEARN_S
            return self._limits, self._gate

    @staticmethod
    async def _read_limits(client: httpx.AsyncClient) -> SandboxLimits | None:
        try:
            response = await client.get("/v1/limits", timeout=5.0)
            body = response.json() if response.status_code == 200 else None
            if not isinstance(body, dict):
                return None
            return SandboxLimits(slots=int(body["slots"]), default_cpu_s=float(body["default_cpu_s"]),
                                 default_wall_s=None if body.get("default_wall_s") is None else float(body["default_wall_s"]),
                                 compile_wall_s=float(body["compile_wall_s"]))
        except (httpx.HTTPError, ValueError, KeyError, TypeError):
            return None

    @staticmethod
    def run_budget_s(limits: dict[str, Any], tests: int, compiled: bool, sandbox: SandboxLimits) -> float:
        """How long the sandbox may take once it has the request: every test's wall limit (tests
        run one after another at worst), one more for a slot held by another request's run, the
        compile limit, and a margin. A program slower than this is stopped by the sandbox itself,
        so a slow wrong program gets its verdict (and 0) before this deadline, never `timeout`."""
        wall_s = float(limits["wall_s"])
        return (sandbox.compile_wall_s if compiled else 0.0) + wall_s * (tests + 1) + REPLY_MARGIN_S

    async def score_batch(self, samples: Sequence[Sample], params: Params, context: ScoringContext) -> list[Scored]:
        assert isinstance(params, CodeScorer.Params)
        return list(await asyncio.gather(*(self._score(sample, params, context) for sample in samples)))

    async def _score(self, sample: Sample, params: CodeScorer.Params, context: ScoringContext) -> Scored:
        started = time.perf_counter()
        scored = await self._score_untimed(sample, params, context)
        return replace(scored, latency_ms=(time.perf_counter() - started) * 1000)

    async def _score_untimed(self, sample: Sample, params: CodeScorer.Params, context: ScoringContext) -> Scored:
        try:
            reference = CodeReference.parse(sample.reference)
        except BadReference as exc:
            return Scored.unscorable(str(exc))
        wanted = params.language or reference.language
        extracted = extract_code(sample.completion, wanted)
        if extracted is None:
            return Scored.ok(0.0, f"no ```{wanted or 'python'} code block in the completion")
        language, code = extracted
        if reference.mode != "stdio" and language != "python":
            return Scored.ok(0.0, f"a {language} program cannot be judged in {reference.mode} mode (python only)")
        sandbox, gate = await self._sandbox()
        limits = dict(reference.limits)
        if params.cpu_s is not None:
            limits["cpu_s"] = params.cpu_s
        if params.memory_mb is not None:
            limits["memory_mb"] = params.memory_mb
        # Sent explicitly, so the deadline below follows from the limits the sandbox applies.
        limits["cpu_s"] = float(limits.get("cpu_s") or sandbox.default_cpu_s)
        limits["wall_s"] = float(limits.get("wall_s") or sandbox.wall_s(limits["cpu_s"]))
        stop = params.stop_on_first_failure if params.stop_on_first_failure is not None else params.reward == "binary"
        body = {"language": language, "code": reference.prefix + code, "mode": reference.mode, "tests": reference.tests,
                "entry_point": reference.entry_point, "stop_on_first_failure": stop, "limits": limits}
        if reference.float_tolerance is not None:
            body["float_tolerance"] = reference.float_tolerance
        if reference.mode == "assert" and reference.prefix:
            body["test_prelude"] = reference.prefix  # the prompt's helpers, kept apart from the program (issue 14)
        budget_s = self.run_budget_s(limits, len(reference.tests), language in COMPILED, sandbox)
        batch_deadline = context.batch_deadline
        try:
            # Waiting here for the sandboxes' capacity costs only the batch's own deadline.
            async with asyncio.timeout_at(batch_deadline), gate:
                result = await self._judge(body, budget_s, batch_deadline)
        except TimeoutError:
            left = "" if batch_deadline is None else " before the batch deadline"
            return Scored.timeout(f"no sandbox answer{left}")
        if isinstance(result, Scored):
            return result
        return self._reward(result, reference, params)

    async def _judge(self, body: dict[str, Any], budget_s: float, batch_deadline: float | None) -> dict[str, Any] | Scored:
        """POST /v1/judge: try each sandbox replica once on a transport error, wait out 429s.

        Each attempt gets `budget_s` from when it is sent (the runs' limits); a 429 (the
        sandbox is full) is waited out as its `Retry-After` says, bounded by the batch deadline
        (or `MAX_OVERLOAD_WAIT_S`), and does not count against the item.
        """
        loop = asyncio.get_running_loop()
        failures: list[str] = []
        attempts = 0
        overload_until = loop.time() + MAX_OVERLOAD_WAIT_S
        while True:
            client = self._clients[next(self._next)]
            try:
                response = await asyncio.wait_for(client.post("/v1/judge", json=body, timeout=budget_s), budget_s)
            except (TimeoutError, httpx.TimeoutException):
                return Scored.timeout(f"the sandbox did not answer within {budget_s:g} s (the runs' own limits allow less)")
            except httpx.TransportError as exc:
                failures.append(f"{client.base_url}: {type(exc).__name__}: {exc}")
                attempts += 1
                if attempts >= len(self._clients):
                    return Scored.error("sandbox unreachable: " + "; ".join(failures))
                continue
            if response.status_code == 429:
                wait = max(0.05, float(response.headers.get("retry-after", "1") or 1))
                if batch_deadline is None and loop.time() + wait > overload_until:
                    return Scored.timeout(f"the sandbox stayed overloaded (429) for {MAX_OVERLOAD_WAIT_S:g} s")
                await asyncio.sleep(wait)  # past the batch deadline, the caller's timeout_at ends this
                continue
            if response.status_code in (413, 422):
                return Scored.unscorable(f"the sandbox refused the reference's tests: {_detail(response)}")
            if response.status_code != 200:
                return Scored.error(f"sandbox answered {response.status_code}: {_detail(response)}")
            try:
                return response.json()
            except ValueError:
                return Scored.error("sandbox answered 200 with a body that is not JSON")

    @staticmethod
    def _reward(result: dict[str, Any], reference: CodeReference, params: CodeScorer.Params) -> Scored:
        verdict = result.get("verdict")
        tests = result.get("tests") or []
        if verdict == "sandbox_error" or len(tests) != len(reference.tests):
            failed = next((t.get("detail", "") for t in tests if t.get("verdict") == "sandbox_error"), "")
            return Scored.error(f"sandbox_error: {failed}".strip())
        passed = [t.get("verdict") == "accepted" for t in tests]
        first_failure = next((f"test {i + 1}: {t.get('verdict')} {t.get('detail', '')}".strip()
                              for i, t in enumerate(tests) if t.get("verdict") != "accepted"), "")
        detail = f"{verdict} ({sum(passed)}/{len(passed)} passed)" + (f"; {first_failure[:300]}" if first_failure else "")
        if params.reward == "binary":
            return Scored.ok(1.0 if verdict == "accepted" else 0.0, detail)
        if params.reward == "fraction":
            return Scored.ok(sum(passed) / len(passed), detail)
        total = sum(reference.weights)
        if total <= 0:
            return Scored.unscorable("reference.weights sum to 0")
        return Scored.ok(sum(w for w, ok in zip(reference.weights, passed) if ok) / total, detail)


def _detail(response: httpx.Response) -> str:
    try:
        return str(response.json().get("detail", response.text))[:500]
    except ValueError:
        return response.text[:500]


@asynccontextmanager
async def open_code_scorer(settings: Settings) -> AsyncIterator[CodeScorer]:
    """The `code` scorer for the gateway's lifespan.

    With `settings.sandbox_url` (one URL or several, comma-separated) it calls those replicas,
    with `REWARDSTACK_SANDBOX_API_TOKEN` as bearer token when set;
    without, it starts the sandbox in this process (its executors are still separate, isolated
    processes) and calls it through `httpx.ASGITransport`. A sandbox that cannot isolate on this
    host fails here, at startup, rather than running code unisolated.
    """
    async with AsyncExitStack() as stack:
        timeout = httpx.Timeout(5.0, read=None)
        from rewardstack.sandbox.settings import SandboxSettings

        sandbox_settings = SandboxSettings()  # REWARDSTACK_SANDBOX_*: the token, or the embedded sandbox's config
        if settings.sandbox_url:
            urls = [u.strip().rstrip("/") for u in settings.sandbox_url.split(",") if u.strip()]
            limits = httpx.Limits(max_connections=MAX_IN_FLIGHT, max_keepalive_connections=MAX_IN_FLIGHT)
            token = sandbox_settings.api_token
            headers = {"Authorization": f"Bearer {token.get_secret_value()}"} if token is not None else {}
            clients = [await stack.enter_async_context(
                httpx.AsyncClient(base_url=u, timeout=timeout, limits=limits, headers=headers)) for u in urls]
        else:
            from rewardstack.sandbox.app import create_sandbox_app

            app = create_sandbox_app(sandbox_settings)
            await stack.enter_async_context(app.router.lifespan_context(app))
            transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
            clients = [await stack.enter_async_context(
                httpx.AsyncClient(transport=transport, base_url="http://sandbox.embedded", timeout=timeout))]
        yield CodeScorer(clients)

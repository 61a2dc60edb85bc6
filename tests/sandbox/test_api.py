"""The sandbox API on a real server: run, judge in each mode and language, verdicts, limits, health."""

from __future__ import annotations

import asyncio
import shutil
import time

import httpx
import pytest

from rewardstack.sandbox.app import create_sandbox_app
from tests.sandbox.helpers import judge, run, sandbox_settings

ADD_PY = "a, b = map(int, input().split())\nprint(a + b)\n"
ADD_CPP = "#include <iostream>\nint main() { long long a, b; std::cin >> a >> b; std::cout << a + b << '\\n'; }\n"
ADD_C = '#include <stdio.h>\nint main(void) { long long a, b; scanf("%lld %lld", &a, &b); printf("%lld\\n", a + b); return 0; }\n'
ADD_JAVA = ("import java.util.*;\npublic class Main {\n  public static void main(String[] args) {\n"
            "    Scanner in = new Scanner(System.in);\n    long a = in.nextLong(), b = in.nextLong();\n"
            "    System.out.println(a + b);\n  }\n}\n")
ADD_JS = "const [a, b] = require('fs').readFileSync(0, 'utf8').trim().split(/\\s+/).map(BigInt);\nconsole.log(String(a + b));\n"
TOOLS = {"cpp": "g++", "c": "gcc", "java": "javac", "javascript": "node"}


def needs(language: str) -> pytest.MarkDecorator:
    tool = TOOLS.get(language)
    return pytest.mark.skipif(tool is not None and shutil.which(tool) is None, reason=f"{tool} is not installed")


LANGUAGES = [pytest.param(lang, code, id=lang, marks=needs(lang))
             for lang, code in [("python", ADD_PY), ("cpp", ADD_CPP), ("c", ADD_C), ("java", ADD_JAVA), ("javascript", ADD_JS)]]
ADD_TESTS = [{"input": "1 2\n", "output": "3\n"}, {"input": "-5 5", "output": "0"}, {"input": "1000000000000 1", "output": "1000000000001"}]


@pytest.mark.parametrize(("language", "code"), LANGUAGES)
def test_run_each_language(client: httpx.Client, language: str, code: str) -> None:
    result = run(client, code, language=language, stdin="40 2\n")
    assert result["status"] == "ok", result
    assert result["stdout"] == "42\n"
    assert result["exit_code"] == 0 and result["signal"] is None
    assert result["cpu_ms"] > 0 and result["wall_ms"] > 0 and result["memory_kb"] > 0


@pytest.mark.parametrize(("language", "code"), LANGUAGES)
def test_judge_stdio_each_language(client: httpx.Client, language: str, code: str) -> None:
    result = judge(client, language=language, code=code, tests=ADD_TESTS)
    assert result["verdict"] == "accepted", result
    assert (result["passed"], result["total"]) == (3, 3)
    wrong = judge(client, language=language, code=code.replace("a + b", "a - b"), tests=ADD_TESTS, stop_on_first_failure=False)
    assert wrong["verdict"] == "wrong_answer"
    assert [t["verdict"] for t in wrong["tests"]] == ["wrong_answer", "wrong_answer", "wrong_answer"]


def test_judge_call_mode(client: httpx.Client) -> None:
    code = "def pairs(n):\n    return [(i, i * i) for i in range(n)]\n"
    tests = [{"args": [3], "expected": [[0, 0], [1, 1], [2, 4]]}, {"args": [0], "expected": []},
             {"args": [], "kwargs": {"n": 1}, "expected": [[0, 0]]}, {"args": [2], "expected": [[0, 0]]}]
    result = judge(client, code=code, mode="call", entry_point="pairs", tests=tests)
    assert [t["verdict"] for t in result["tests"]] == ["accepted", "accepted", "accepted", "wrong_answer"]
    assert result["verdict"] == "wrong_answer" and result["passed"] == 3
    missing = judge(client, code=code, mode="call", entry_point="nope", tests=tests[:1])
    assert missing["verdict"] == "runtime_error" and "nope" in missing["tests"][0]["detail"]


def test_call_mode_is_not_fooled_by_always_equal(client: httpx.Client) -> None:
    code = "class Yes(int):\n    def __eq__(self, other):\n        return True\ndef f():\n    return Yes(0)\n"
    result = judge(client, code=code, mode="call", entry_point="f", tests=[{"args": [], "expected": 7}])
    assert result["verdict"] == "wrong_answer"
    objects = judge(client, code="def f():\n    return object()\n", mode="call", entry_point="f", tests=[{"expected": 1}])
    assert objects["verdict"] == "wrong_answer"


def test_judge_assert_mode_and_early_exit(client: httpx.Client) -> None:
    code = "def inc(x):\n    return x + 1\n"
    result = judge(client, code=code, mode="assert", tests=["assert inc(1) == 2", "assert inc(1) == 3", "assert inc(undefined) == 1"],
                   stop_on_first_failure=False)
    assert [t["verdict"] for t in result["tests"]] == ["accepted", "wrong_answer", "runtime_error"]
    for cheat in ("import os\nos._exit(0)\n", "import sys\nsys.exit(0)\n", "exit()\n"):
        cheated = judge(client, code=cheat + code, mode="assert", tests=["assert inc(1) == 2"])
        assert cheated["verdict"] != "accepted", cheat


def test_compile_errors(client: httpx.Client) -> None:
    cpp = judge(client, language="cpp", code="int main() { return x; }", tests=ADD_TESTS)
    assert cpp["verdict"] == "compile_error" and "not declared" in cpp["compile_output"]
    assert all(t["verdict"] == "compile_error" for t in cpp["tests"])
    python = judge(client, code="def f(:\n", tests=ADD_TESTS)
    assert python["verdict"] == "compile_error" and python["passed"] == 0
    assert "SyntaxError" in python["tests"][0]["detail"]


def test_compiled_binary_is_cached(client: httpx.Client, sandbox_url: str) -> None:
    code = ADD_CPP + "// cache probe\n"
    judge(client, language="cpp", code=code, tests=ADD_TESTS)
    hits_before = _metric(client, 'rewardstack_sandbox_compile_cache_total{result="hit"}')
    judge(client, language="cpp", code=code, tests=ADD_TESTS[:1])
    assert _metric(client, 'rewardstack_sandbox_compile_cache_total{result="hit"}') == hits_before + 1


def _metric(client: httpx.Client, name: str) -> float:
    for line in client.get("/metrics").text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    return 0.0


@pytest.mark.parametrize(
    ("code", "limits", "verdict"),
    [
        pytest.param("while True:\n    pass\n", {"cpu_s": 0.5}, "time_limit", id="cpu-spin"),
        pytest.param("import time\ntime.sleep(30)\n", {"cpu_s": 0.5, "wall_s": 1.0}, "time_limit", id="sleep-wall-backstop"),
        pytest.param("x = bytearray(1 << 30)\n", {"memory_mb": 128}, "memory_limit", id="memory"),
        pytest.param("while True:\n    print('y' * 1000)\n", {"output_kb": 64}, "output_limit", id="output"),
        pytest.param("raise ValueError('boom')\n", {}, "runtime_error", id="exception"),
        pytest.param("import sys\nsys.exit(3)\n", {}, "runtime_error", id="exit-code"),
        pytest.param("import os, signal\nos.kill(os.getpid(), signal.SIGSEGV)\n", {}, "runtime_error", id="signal"),
    ],
)
def test_limit_verdicts_python(client: httpx.Client, code: str, limits: dict, verdict: str) -> None:
    result = judge(client, code=code, tests=[{"input": "", "output": "x"}], limits=limits)
    assert result["verdict"] == verdict, result


def test_limit_verdicts_cpp(client: httpx.Client) -> None:
    spin = "int main() { volatile unsigned long x = 0; for (;;) x++; }"
    assert judge(client, language="cpp", code=spin, tests=[{"output": "1"}], limits={"cpu_s": 0.5})["verdict"] == "time_limit"
    hog = "#include <vector>\nint main() { std::vector<char> v(1UL << 32, 1); return v[7]; }"
    assert judge(client, language="cpp", code=hog, tests=[{"output": "1"}], limits={"memory_mb": 128})["verdict"] == "memory_limit"
    crash = "int main() { volatile int *p = 0; *p = 1; }"
    result = judge(client, language="cpp", code=crash, tests=[{"output": "1"}])
    assert result["verdict"] == "runtime_error" and result["tests"][0]["signal"] == 11


@pytest.mark.parametrize(
    ("language", "code", "limits", "verdict"),
    [
        pytest.param("java", "public class Main { public static void main(String[] a) { for (;;) {} } }", {"cpu_s": 1}, "time_limit", id="java-spin",
                     marks=needs("java")),
        pytest.param("java", "import java.util.*;\npublic class Main { public static void main(String[] a) {\n"
                     "  List<long[]> l = new ArrayList<>(); for (;;) l.add(new long[1 << 20]); } }", {"memory_mb": 128}, "memory_limit", id="java-heap",
                     marks=needs("java")),
        pytest.param("javascript", "let a = [];\nfor (;;) a.push(new Array(1e6).fill(1));\n", {"memory_mb": 128}, "memory_limit", id="js-heap",
                     marks=needs("javascript")),
        pytest.param("javascript", "throw new Error('boom');\n", {}, "runtime_error", id="js-exception", marks=needs("javascript")),
    ],
)
def test_limit_verdicts_jvm_and_node(client: httpx.Client, language: str, code: str, limits: dict, verdict: str) -> None:
    result = judge(client, language=language, code=code, tests=[{"output": "1"}], limits=limits)
    assert result["verdict"] == verdict, result


def test_stop_on_first_failure_skips_the_rest(client: httpx.Client) -> None:
    result = judge(client, code="print(1)", tests=[{"output": "1"}, {"output": "2"}, {"output": "1"}], stop_on_first_failure=True)
    assert [t["verdict"] for t in result["tests"]] == ["accepted", "wrong_answer", "skipped"]
    assert result["verdict"] == "wrong_answer" and result["passed"] == 1 and result["total"] == 3


@pytest.mark.parametrize(
    ("body", "field"),
    [
        pytest.param({"language": "ruby", "code": "", "tests": [{"output": ""}]}, "language", id="unknown-language"),
        pytest.param({"language": "python", "code": "", "tests": []}, "tests", id="no-tests"),
        pytest.param({"language": "python", "code": "", "mode": "call", "tests": [{"args": [], "expected": 1}]}, "entry_point", id="call-needs-entry-point"),
        pytest.param({"language": "python", "code": "", "mode": "stdio", "tests": ["assert True"]}, "tests[0]", id="test-shape-vs-mode"),
        pytest.param({"language": "cpp", "code": "", "mode": "assert", "tests": ["assert True"]}, "mode", id="assert-is-python-only"),
        pytest.param({"language": "python", "code": "", "tests": [{"output": ""}], "limits": {"cpu_s": 999}}, "limits.cpu_s", id="cpu-over-ceiling"),
        pytest.param({"language": "python", "code": "", "tests": [{"output": ""}], "limits": {"memory_mb": 10**6}}, "limits.memory_mb", id="memory-over-ceiling"),
        pytest.param({"language": "python", "code": "", "tests": [{"output": ""}], "colour": 1}, "colour", id="unknown-field"),
    ],
)
def test_bad_requests_name_the_field(client: httpx.Client, body: dict, field: str) -> None:
    response = client.post("/v1/judge", json=body)
    assert response.status_code == 422, response.text
    error = response.json()
    assert error["code"] == "invalid_request" and field in error["detail"], error


def test_size_limits() -> None:
    app = create_sandbox_app(sandbox_settings(slots=1, max_code_chars=100, max_tests=3, max_body_bytes=4096))

    async def scenario() -> None:
        async with app.router.lifespan_context(app):
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sandbox") as http:
                code = await http.post("/v1/run", json={"language": "python", "code": "#" * 101})
                assert code.status_code == 413 and "code" in code.json()["detail"]
                tests = await http.post("/v1/judge", json={"language": "python", "code": "", "tests": [{"output": ""}] * 4})
                assert tests.status_code == 413 and "tests" in tests.json()["detail"]
                body = await http.post("/v1/run", json={"language": "python", "code": "", "stdin": "x" * 5000})
                assert body.status_code == 413 and body.json()["code"] == "request_too_large"

    asyncio.run(scenario())


def test_full_queue_answers_429_with_retry_after() -> None:
    app = create_sandbox_app(sandbox_settings(slots=1, max_queued_runs=1))
    sleeper = {"language": "python", "code": "import time\ntime.sleep(1.5)\n", "tests": [{"output": ""}] * 3,
               "stop_on_first_failure": False, "limits": {"cpu_s": 1, "wall_s": 5}}

    async def scenario() -> None:
        async with app.router.lifespan_context(app):
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sandbox", timeout=60) as http:
                busy = asyncio.create_task(http.post("/v1/judge", json=sleeper))
                deadline = time.monotonic() + 30
                while (await http.get("/readyz")).json()["waiting"] == 0:
                    assert time.monotonic() < deadline, "the first request never queued"
                    await asyncio.sleep(0.05)
                refused = await http.post("/v1/judge", json=dict(sleeper, tests=[{"output": ""}] * 2))
                assert refused.status_code == 429, refused.text
                assert int(refused.headers["retry-after"]) >= 1
                assert refused.json()["code"] == "overloaded"
                served = (await busy).json()  # the admitted request is served in full
                assert served["verdict"] == "accepted" and served["passed"] == 3

    asyncio.run(scenario())


def test_health_ready_metrics(client: httpx.Client) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["alive"] == 2 and ready.json()["seccomp"] is True
    text = client.get("/metrics").text
    assert "rewardstack_sandbox_executions_total" in text and "rewardstack_sandbox_slots_alive 2.0" in text and "rewardstack_sandbox_executor_restarts_total" in text


def test_executor_killed_midrun_is_sandbox_error_then_recovers() -> None:
    app = create_sandbox_app(sandbox_settings(slots=1))

    async def scenario() -> None:
        async with app.router.lifespan_context(app):
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sandbox", timeout=60) as http:
                slow = asyncio.create_task(http.post("/v1/judge", json={
                    "language": "python", "code": "import time\ntime.sleep(3)", "tests": [{"output": ""}],
                    "limits": {"wall_s": 10}}))
                await asyncio.sleep(0.5)
                while app.state.pool.running == 0:
                    await asyncio.sleep(0.05)
                app.state.pool._slots[0].kill()
                result = (await slow).json()
                assert result["verdict"] == "sandbox_error", result
                deadline = time.monotonic() + 60
                while (await http.get("/readyz")).status_code != 200:
                    assert time.monotonic() < deadline, "the executor was not restarted"
                    await asyncio.sleep(0.1)
                again = await http.post("/v1/run", json={"language": "python", "code": "print(5)"})
                assert again.json()["stdout"] == "5\n"

    asyncio.run(scenario())


@pytest.mark.parametrize(
    ("code", "stdout"),
    [
        pytest.param("from multiprocessing import Pool\nwith Pool(2) as p:\n    print(p.map(abs, [-1, -2]))\n", "[1, 2]\n", id="multiprocessing"),
        pytest.param("import sys\nsys.setrecursionlimit(10**6)\ndef f(n):\n    return 0 if n == 0 else 1 + f(n - 1)\nprint(f(50000))\n",
                     "50000\n", id="deep-recursion"),
        pytest.param("import subprocess\nprint(subprocess.run(['python3', '-c', 'print(7)'], capture_output=True).stdout)\n",
                     "b'7\\n'\n", id="subprocess"),
        pytest.param("import tempfile, os\nd = tempfile.mkdtemp()\nprint(d.startswith('/tmp/'), os.getcwd())\n", "True /tmp\n", id="tempfile"),
    ],
)
def test_common_runtime_features_work(client: httpx.Client, code: str, stdout: str) -> None:
    result = run(client, code)
    assert (result["status"], result["stdout"]) == ("ok", stdout), result


def test_bearer_token() -> None:
    app = create_sandbox_app(sandbox_settings(slots=1, api_token="s3cret-token"))
    body = {"language": "python", "code": "print(1)"}

    async def scenario() -> None:
        async with app.router.lifespan_context(app):
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sandbox") as http:
                missing = await http.post("/v1/run", json=body)
                assert missing.status_code == 401 and missing.json()["code"] == "unauthorized"
                wrong = await http.post("/v1/judge", json=dict(body, tests=[{"output": "1"}]), headers={"Authorization": "Bearer nope"})
                assert wrong.status_code == 401
                right = await http.post("/v1/run", json=body, headers={"Authorization": "Bearer s3cret-token"})
                assert right.json()["stdout"] == "1\n"
                assert (await http.get("/healthz")).status_code == 200  # probes need no token

    asyncio.run(scenario())


@pytest.mark.parametrize(
    ("printed", "expected", "verdict"),
    [
        pytest.param("1 2 3   \\r\\n", "1 2 3\n", "accepted", id="trailing-spaces-and-crlf"),
        pytest.param("1 2", "1 2 3\n", "wrong_answer", id="prefix"),
        pytest.param("1 2 3\\n4\\n", "1 2 3\n", "wrong_answer", id="extra-line"),
        pytest.param("3 2 1\\n", "1 2 3\n", "wrong_answer", id="reordered"),
        pytest.param("0.30000000000000004\\n", "0.3\n", "wrong_answer", id="float-close-needs-a-tolerance"),
        pytest.param("0.50\\n", "0.5\n", "accepted", id="float-equal"),
        pytest.param("3.0000001\\n", "3\n", "wrong_answer", id="integer-expected-exact"),
        pytest.param(f"{2**200 + 1}\\n", f"{2**200}\n", "wrong_answer", id="big-integer-exact"),
    ],
)
def test_stdio_traps_end_to_end(client: httpx.Client, printed: str, expected: str, verdict: str) -> None:
    code = f"import sys\nsys.stdout.write('{printed}')\n"
    assert judge(client, code=code, tests=[{"input": "", "output": expected}])["verdict"] == verdict


def test_float_tolerance_when_the_request_asks(client: httpx.Client) -> None:
    code = "print(0.1 + 0.2)\n"
    loose = judge(client, code=code, tests=[{"output": "0.3"}], float_tolerance={"rel_tol": 1e-9})
    assert loose["verdict"] == "accepted", loose
    tiny = judge(client, code="print(0.0)\n", tests=[{"output": "1e-12"}], float_tolerance={"rel_tol": 1e-9})
    assert tiny["verdict"] == "wrong_answer", tiny  # relative only: 0 is not close to 1e-12
    call = judge(client, code="def f():\n    return 0.1 + 0.2\n", mode="call", entry_point="f",
                 tests=[{"expected": 0.3}], float_tolerance={"rel_tol": 1e-9, "abs_tol": 0})
    assert call["verdict"] == "accepted", call
    bad = client.post("/v1/judge", json={"language": "python", "code": "", "tests": [{"output": ""}],
                                         "float_tolerance": {"rel_tol": -1}})
    assert bad.status_code == 422 and "float_tolerance" in bad.json()["detail"]

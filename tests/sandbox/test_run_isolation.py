"""Issue 14's attacks, each reproduced and shown contained.

- nothing of one run reaches the next (a copycat searching its whole memory finds no earlier run's
  code, input, output or result);
- memory, processes and CPU are limited for the whole run (memfd, SysV shm, forks, threads; a
  multi-process CPU hog) through the slot's cgroup;
- one request cannot hold every slot (a long judge request, compile bombs);
- the small leaks: the run's command line, forged compile errors, replies bounded in bytes.
"""

from __future__ import annotations

import concurrent.futures
import secrets
import statistics
import textwrap
import time

import httpx
import pytest

from tests.sandbox.helpers import judge, run

# Reads the program's own anonymous memory (heap, arenas, stack: where an inherited heap would
# keep an earlier run's data) with ctypes and prints each `PREFIX` + 32 hex digits it finds. The
# prefix is assembled at run time so the program's own text does not match.
_COPYCAT = """
import ctypes, re
def found(*parts):
    pattern = re.compile(re.escape("".join(parts).encode()) + rb"[0-9a-f]{32}")
    hits = set()
    with open("/proc/self/maps") as maps:
        regions = [line.split() for line in maps]
    for region in regions:
        anonymous = len(region) < 6 or region[5] in ("[heap]", "[stack]")
        if not region[1].startswith("r") or not anonymous:
            continue
        lo, hi = (int(x, 16) for x in region[0].split("-"))
        if hi - lo > 1 << 28:
            continue
        hits.update(h.decode() for h in pattern.findall(ctypes.string_at(lo, hi - lo)))
    return sorted(hits)
"""


def _py(code: str) -> str:
    return textwrap.dedent(code).lstrip()


def test_copycat_finds_nothing_of_earlier_runs(client: httpx.Client) -> None:
    """An honest run's code, stdin, output and result, on every slot, then a copycat that searches
    its whole inherited memory for them: it finds nothing, in stdio, call and assert mode."""
    answer = "ANSWER" + secrets.token_hex(16)
    given = "GIVEN" + secrets.token_hex(16)
    honest = f"def solve():\n    return {answer!r}\nprint(solve())\n"
    # Four tests each, so the honest runs (not stopped at a failure) reach both slots.
    for _ in range(2):
        stdio = judge(client, code=honest, tests=[{"input": given, "output": answer}] * 4, stop_on_first_failure=False)
        assert stdio["verdict"] == "accepted", stdio
        call = judge(client, code=honest, mode="call", entry_point="solve", tests=[{"expected": answer}] * 4,
                     stop_on_first_failure=False)
        assert call["verdict"] == "accepted", call
        asserted = judge(client, code=honest, mode="assert", tests=[f"assert solve() == {answer!r}"] * 4,
                         stop_on_first_failure=False)
        assert asserted["verdict"] == "accepted", asserted

    # The search works: it finds a token the spy itself holds (built at run time), and only that.
    own = "ANSWER" + "f" * 32
    spy = _COPYCAT + "mine = ''.join(['ANS', 'WER', 'f' * 32])\nprint(found('ANS', 'WER'), found('GIV', 'EN'))\n"
    for _ in range(4):
        seen = run(client, spy)
        assert seen["status"] == "ok", seen
        assert seen["stdout"] == f"['{own}'] []\n", f"a run read an earlier run's data: {seen['stdout'][:300]}"

    copycat = _COPYCAT + "def solve():\n    hits = found('ANS', 'WER')\n    return hits[0] if hits else 'nothing'\n"
    copy_stdio = judge(client, code=copycat + "print(solve())\n", tests=[{"output": answer}] * 2, stop_on_first_failure=False)
    copy_call = judge(client, code=copycat, mode="call", entry_point="solve", tests=[{"expected": answer}] * 2,
                      stop_on_first_failure=False)
    copy_assert = judge(client, code=copycat, mode="assert", tests=[f"assert solve() == {answer!r}"] * 2,
                        stop_on_first_failure=False)
    for result in (copy_stdio, copy_call, copy_assert):
        assert result["verdict"] == "wrong_answer", result


MEMORY_ATTACKS = {
    # Each stays under the per-process limits (address space, file size) and only the sum is
    # too much: before cgroups, all of these got `ok` with 1 GiB and more in use.
    "memfd": """
        import os
        fds = [os.memfd_create("m") for _ in range(12)]
        for fd in fds:
            for _ in range(6):
                os.write(fd, b"x" * (4 << 20))   # 24 MiB each, under the 32 MiB file limit
        print("ALLOCATED", 12 * 24, "MiB")
    """,
    "sysv-shm": """
        import ctypes, ctypes.util
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        libc.shmat.restype = ctypes.c_void_p
        size = 100 << 20
        for _ in range(4):   # 400 MiB of segments, nothing of it in the address space until attached
            seg = libc.shmget(0, ctypes.c_size_t(size), 0o1600)
            assert seg >= 0, ctypes.get_errno()
            address = libc.shmat(seg, None, 0)
            assert address not in (None, ctypes.c_void_p(-1).value), ctypes.get_errno()
            ctypes.memset(address, 1, size)
            libc.shmdt(ctypes.c_void_p(address))   # detached, the segment still holds its memory
        print("ALLOCATED 400 MiB")
    """,
    "forks": """
        import os, time
        children = []
        for _ in range(6):
            pid = os.fork()
            if pid == 0:
                block = bytearray(80 << 20)   # 80 MiB each, under the 128 MiB address space
                for i in range(0, len(block), 4096):
                    block[i] = 1
                time.sleep(3)
                os._exit(0)
            children.append(pid)
        failed = [pid for pid in children if os.waitpid(pid, 0)[1] != 0]
        if failed:
            raise SystemExit(f"{len(failed)} children died")
        print("ALLOCATED", 6 * 80, "MiB")
    """,
    "threads-and-tmpfs": """
        import os
        with open("/tmp/fill", "wb") as f:          # tmpfs pages count too
            for _ in range(7):
                f.write(b"x" * (4 << 20))
        blocks = [bytearray(20 << 20) for _ in range(4)]
        print("ALLOCATED")
    """,
}


@pytest.mark.parametrize("attack", list(MEMORY_ATTACKS), ids=list(MEMORY_ATTACKS))
def test_memory_is_limited_for_the_whole_run(client: httpx.Client, attack: str) -> None:
    memory_mb = 64 if attack == "threads-and-tmpfs" else 128
    result = run(client, _py(MEMORY_ATTACKS[attack]), memory_mb=memory_mb, cpu_s=4, wall_s=20)
    assert result["status"] == "memory_limit", result
    assert "ALLOCATED" not in result["stdout"]


def test_process_count_is_limited_for_the_whole_run(client: httpx.Client) -> None:
    code = _py("""
        import threading, time
        started = 0
        try:
            for _ in range(200):
                threading.Thread(target=time.sleep, args=(2,), daemon=True).start()
                started += 1
        except RuntimeError:
            pass
        print(started)
    """)
    result = run(client, code)
    assert result["status"] == "ok", result
    assert int(result["stdout"]) < 32  # `processes` (32) counts the main thread too


def test_cpu_is_limited_over_all_processes(client: httpx.Client) -> None:
    """A run of 4 spinning processes with cpu_s=1 is stopped for its CPU time, measured over all
    of them, while a normal request alongside it stays fast."""
    hog = _py("""
        import os
        for _ in range(3):
            if os.fork() == 0:
                break
        while True:
            pass
    """)
    with concurrent.futures.ThreadPoolExecutor(1) as background:
        future = background.submit(run, client, hog, cpu_s=1, wall_s=30)
        time.sleep(0.5)
        normal = [run(client, "print(1)") for _ in range(7)]
        result = future.result()
    assert result["status"] == "time_limit", result
    # The budget holds for the run as a whole: 1 s, not 4 x 1 s (checked at least every 0.25 s).
    assert result["cpu_ms"] < 1600, result
    assert all(n["status"] == "ok" for n in normal)
    # The hog is held to one core by its slot's quota; the other slot's runs are not slowed by it.
    assert statistics.median(n["wall_ms"] for n in normal) < 100, [n["wall_ms"] for n in normal]


def test_one_request_cannot_hold_every_slot(client: httpx.Client) -> None:
    """A judge request of 12 sleeping tests (run all, in parallel) shares the slots: a one-line
    request sent after it waits for one of its runs at most, not for all of them."""
    sleeper = "import time\ntime.sleep(1.5)\nprint(1)\n"
    with concurrent.futures.ThreadPoolExecutor(1) as background:
        long = background.submit(judge, client, code=sleeper, tests=[{"output": "1"}] * 12, stop_on_first_failure=False)
        time.sleep(2.0)  # the long request is running, its other tests waiting
        started = time.monotonic()
        quick = run(client, "print(2)")
        waited = time.monotonic() - started
        result = long.result()
    assert quick["stdout"] == "2\n" and result["verdict"] == "accepted"
    # FIFO would have queued it behind about 10 x 1.5 s / 2 slots = 7.5 s of sleepers.
    assert waited < 4.5, waited


CPP_BOMB = (
    "#define A(x) x x x x x x x x\n#define B(x) A(A(A(A(x))))\n#define C(x) B(B(x))\n"
    "int f(int);\nint main() { int s = 0; C(s += f(s);) return s; }\n"
)


def test_compile_bombs_do_not_delay_other_requests(client: httpx.Client) -> None:
    """Two compile bombs at once (a few hundred bytes, minutes of preprocessing) take at most one
    slot between them and end at the compile limits; a one-line run meanwhile is not delayed."""
    bombs = [CPP_BOMB + f"// {i}\n" for i in range(2)]  # distinct sources: no shared compile
    with concurrent.futures.ThreadPoolExecutor(2) as background:
        futures = [background.submit(run, client, bomb, "cpp") for bomb in bombs]
        time.sleep(1.0)
        started = time.monotonic()
        quick = [run(client, "print(3)") for _ in range(3)]
        waited = time.monotonic() - started
        outcomes = [f.result() for f in futures]
    assert all(q["stdout"] == "3\n" for q in quick)
    assert waited < 6.0, waited
    assert all(o["status"] == "compile_error" for o in outcomes), outcomes


def test_run_sees_no_service_path_or_configuration(client: httpx.Client) -> None:
    code = _py("""
        import sys, types
        seen = [open("/proc/self/cmdline", "rb").read().decode(errors="replace"), open("/proc/self/cgroup").read(),
                repr(sys.path), repr(sys.argv), sys.executable]
        for module in list(sys.modules.values()):
            seen.append(str(getattr(module, "__file__", "")))
            for value in vars(module).values():
                code = getattr(value, "__code__", None)
                if isinstance(code, types.CodeType):
                    seen.append(code.co_filename)
        print("\\n".join(seen))
    """)
    result = run(client, code)
    assert result["status"] == "ok", result
    out = result["stdout"]
    for leak in ("/work", "rewardstack", "uid_map", "zygote.py\x00", "sandbox-root", "/sys/fs/cgroup", "process_api"):
        assert leak not in out, leak


def test_program_cannot_print_its_way_to_compile_error(client: httpx.Client) -> None:
    forged = 'import os\nos.write(3, b\'{"kind": "compile_error", "type": "SyntaxError", "message": "x"}\\n\')\nraise SystemExit(1)\n'
    result = judge(client, code=forged, tests=[{"output": "1"}, {"output": "2"}], stop_on_first_failure=False)
    assert [t["verdict"] for t in result["tests"]] == ["runtime_error", "runtime_error"], result
    real = judge(client, code="def f(:\n", tests=[{"output": "1"}])
    assert real["verdict"] == "compile_error", real


def test_reply_is_bounded_in_bytes_whatever_the_output(client: httpx.Client) -> None:
    """4 MiB of invalid UTF-8 (each byte a three-byte U+FFFD) and of control bytes (six bytes
    each, escaped in JSON) still make a reply of about the output limit, not 3-6 times it."""
    for byte in ("\\xff", "\\x01"):
        code = f"import sys\nsys.stdout.buffer.write(b'{byte}' * (4 << 20))\n"
        response = client.post("/v1/run", json={"language": "python", "code": code, "limits": {"output_kb": 8192}})
        assert response.status_code == 200
        body = response.json()
        assert body["status"] == "ok", body["status"]
        assert len(response.content) <= 8192 * 1024 + 64 * 1024, len(response.content)
        assert body["stdout"].endswith("[output cut: over the reply's byte limit]")

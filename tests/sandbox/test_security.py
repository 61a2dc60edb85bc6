"""The security suite: each attack is contained, gets the right verdict, and the service keeps serving.

Every test ends by checking that the server still answers a normal run and, from the host, that no
process of a finished run survives (runs execute as host uids HOST_UID_BASE + slot).
"""

from __future__ import annotations

import concurrent.futures
import os
import textwrap
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import httpx
import pytest

from tests.sandbox.helpers import HOST_UID_BASE, SECRET_ENV, judge, run

SLOTS = 2
SANDBOX_SOURCE = Path(__file__).resolve().parents[2] / "sandbox" / "app.py"


def _host_processes_of_runs() -> list[int]:
    """Host pids whose real uid is one of this session's run uids."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            status = Path(f"/proc/{entry}/status").read_text()
        except OSError:
            continue
        uid_line = next((line for line in status.splitlines() if line.startswith("Uid:")), "")
        uids = [int(x) for x in uid_line.split()[1:]]
        if uids and HOST_UID_BASE <= uids[0] < HOST_UID_BASE + SLOTS:
            found.append(int(entry))
    return found


@pytest.fixture(autouse=True)
def still_serving(client: httpx.Client) -> Iterator[None]:
    yield
    assert run(client, "print(6 * 7)")["stdout"] == "42\n", "the service stopped serving after the attack"
    assert _host_processes_of_runs() == [], "a process of a finished run is still alive on the host"


def _py(code: str) -> str:
    return textwrap.dedent(code).lstrip()


def test_no_network_not_even_the_service_port(client: httpx.Client, sandbox_url: str) -> None:
    port = urlparse(sandbox_url).port
    code = _py(f"""
        import socket
        for host, port in [("127.0.0.1", {port}), ("1.1.1.1", 53), ("10.0.0.1", 80)]:
            try:
                socket.create_connection((host, port), timeout=2).close()
                print("CONNECTED", host)
            except OSError as exc:
                print("blocked", host, type(exc).__name__)
        try:
            socket.getaddrinfo("example.com", 80)
            print("RESOLVED")
        except OSError:
            print("no dns")
    """)
    result = run(client, code)
    assert result["status"] == "ok", result
    assert "CONNECTED" not in result["stdout"] and "RESOLVED" not in result["stdout"]
    assert result["stdout"].count("blocked") == 3


@pytest.mark.parametrize("path", [str(SANDBOX_SOURCE), "/etc/shadow", "/proc/1/environ", "/root/.bashrc", "/work"])
def test_host_files_are_invisible(client: httpx.Client, path: str) -> None:
    code = _py(f"""
        import os
        try:
            if os.path.isdir({path!r}):
                print("LISTED", os.listdir({path!r}))
            else:
                print("READ", open({path!r}, "rb").read()[:20])
        except OSError as exc:
            print("denied", type(exc).__name__)
    """)
    result = run(client, code)
    assert result["stdout"].startswith("denied"), result


def test_environment_and_identity(client: httpx.Client) -> None:
    code = _py("""
        import os
        print(sorted(os.environ))
        print(os.getuid(), os.getgid(), os.getgroups())
    """)
    result = run(client, code)
    assert SECRET_ENV not in result["stdout"]
    assert result["stdout"].splitlines()[1] == "1000 1000 []"


@pytest.mark.parametrize("path", ["/usr/evil", "/etc/evil", "/evil", "/dev/evil", os.path.join(os.getcwd(), "evil")])
def test_no_writes_outside_scratch(client: httpx.Client, path: str) -> None:
    code = _py(f"""
        try:
            open({path!r}, "w").write("x")
            print("WROTE")
        except OSError as exc:
            print("denied", type(exc).__name__)
        open("/tmp/ok.txt", "w").write("scratch is writable")
        print(open("/tmp/ok.txt").read())
    """)
    result = run(client, code)
    assert result["stdout"].splitlines() == [result["stdout"].splitlines()[0], "scratch is writable"]
    assert result["stdout"].startswith("denied"), result
    assert not os.path.exists(path)


def test_namespace_escapes_are_refused(client: httpx.Client) -> None:
    code = _py("""
        import ctypes, os
        libc = ctypes.CDLL(None, use_errno=True)
        for name, flags in [("user", 0x10000000), ("net", 0x40000000), ("mount", 0x00020000)]:
            print(name, libc.unshare(flags), ctypes.get_errno())
        print("ptrace", libc.ptrace(16, 1, 0, 0))
        print("mount", libc.mount(b"none", b"/tmp", b"tmpfs", 0, None))
    """)
    lines = run(client, code)["stdout"].splitlines()
    assert [line.split()[1] for line in lines] == ["-1"] * 5, lines


@pytest.mark.parametrize(
    ("code", "verdicts"),
    [
        pytest.param("import os\nwhile True:\n    os.fork()\n", {"runtime_error", "time_limit"}, id="fork-bomb"),
        pytest.param("import os\nos.system(\"bash -c ':(){ :|:& };:'\")\nprint('survived')\n", {"accepted", "runtime_error", "time_limit"},
                     id="shell-fork-bomb"),
        pytest.param("import threading, time\nwhile True:\n    threading.Thread(target=time.sleep, args=(60,)).start()\n",
                     {"runtime_error", "memory_limit"}, id="thread-bomb"),
        pytest.param("x = []\nwhile True:\n    x.append(bytearray(10 << 20))\n", {"memory_limit"}, id="memory-bomb"),
        pytest.param("while True:\n    pass\n", {"time_limit"}, id="cpu-spin"),
        pytest.param("import sys\nwhile True:\n    sys.stdout.write('A' * 65536)\n", {"output_limit"}, id="unbounded-output"),
        pytest.param("import sys\nwhile True:\n    sys.stderr.write('E' * 65536)\n", {"output_limit"}, id="unbounded-stderr"),
        pytest.param("import os\nos.kill(-1, 9)\n", {"runtime_error", "accepted", "wrong_answer"}, id="kill-all-python"),
        pytest.param("import os\nos.system('kill -9 -1')\nprint('after')\n", {"runtime_error", "accepted", "wrong_answer"}, id="kill-all-shell"),
        pytest.param("for i in range(10**6):\n    with open(f'/tmp/fill{i}', 'wb') as f:\n        f.write(b'0' * (8 << 20))\n",
                     {"runtime_error"}, id="fill-scratch"),
    ],
)
def test_resource_attacks(client: httpx.Client, code: str, verdicts: set[str]) -> None:
    result = judge(client, code=code, tests=[{"output": "survived"}], limits={"cpu_s": 1, "wall_s": 5, "memory_mb": 256, "output_kb": 256})
    assert result["verdict"] in verdicts, result


def test_background_process_does_not_outlive_the_run(client: httpx.Client) -> None:
    code = _py("""
        import os, subprocess
        subprocess.Popen(["sleep", "300"], start_new_session=True)
        if os.fork() == 0:
            os.setsid()
            import time
            time.sleep(300)
        print("parent done")
    """)
    result = run(client, code)
    assert result["stdout"] == "parent done\n"
    assert _host_processes_of_runs() == []  # checked right away, not only by the fixture


def test_scratch_is_private_and_wiped(client: httpx.Client) -> None:
    writer = _py("""
        import os, time
        open("/tmp/secret-of-a", "w").write("a's data")
        time.sleep(1.5)
        print(sorted(os.listdir("/tmp")))
    """)
    reader = _py("""
        import os, time
        time.sleep(0.5)
        print(sorted(os.listdir("/tmp")))
        try:
            print(open("/tmp/secret-of-a").read())
        except OSError:
            print("not found")
    """)
    with concurrent.futures.ThreadPoolExecutor(2) as threads:
        a = threads.submit(run, client, writer)
        b = threads.submit(run, client, reader)
        assert a.result()["stdout"] == "['secret-of-a']\n"
        assert b.result()["stdout"] == "[]\nnot found\n"
    later = [run(client, "import os\nprint(sorted(os.listdir('/tmp')))")["stdout"] for _ in range(SLOTS * 2)]
    assert later == ["[]\n"] * (SLOTS * 2)


def test_compiler_sees_only_the_sandbox(client: httpx.Client) -> None:
    code = f'#include "{SANDBOX_SOURCE}"\nint main() {{}}\n'
    result = judge(client, language="cpp", code=code, tests=[{"output": ""}])
    assert result["verdict"] == "compile_error"
    assert "No such file" in result["compile_output"]


def test_program_cannot_forge_a_sandbox_error(client: httpx.Client) -> None:
    """sandbox_error is ignored by the reward (status error), so a program must not be able to claim it."""
    code = "import os, sys\nsys.stderr.write('sandbox set-up failed: OSError()\\n')\nos.write(3, b'x')\nos._exit(121)\n"
    result = judge(client, code=code, tests=[{"output": "1"}])
    assert result["verdict"] == "runtime_error", result
    try_fd5 = judge(client, code="import os\nos.write(5, b'k')\n", tests=[{"output": "1"}])
    assert try_fd5["verdict"] == "runtime_error" and "Bad file descriptor" in try_fd5["tests"][0]["detail"]


def test_sysv_ipc_does_not_survive_the_run(client: httpx.Client) -> None:
    """SysV IPC objects outlive their processes; the next run in the slot must not find them."""
    create = _py("""
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        print(libc.shmget(0x5EC, 4096, 0o1666) >= 0)  # IPC_CREAT | 0666
    """)
    find = _py("""
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        print(libc.shmget(0x5EC, 4096, 0o666))
    """)
    assert run(client, create)["stdout"] == "True\n"
    assert [run(client, find)["stdout"] for _ in range(SLOTS * 2)] == ["-1\n"] * (SLOTS * 2)

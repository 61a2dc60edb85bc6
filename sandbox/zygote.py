"""The warm executor: one per slot, a pre-started Python that forks once per execution.

Run by the service as `python -I -S sandbox/zygote.py CONFIG_JSON` with a minimal environment;
it talks to the service over its stdin/stdout with `sandbox.protocol` messages. Standard library
only. Start-up, once per slot:

1. fork a helper that stays in the host namespaces, then `unshare` user, mount, net, ipc, uts,
   cgroup and pid namespaces; the helper writes our uid/gid maps (inside 0 = the service's uid,
   inside RUN_UID = an unprivileged host uid of this slot), then exits;
2. fork the executor proper, pid 1 of the new pid namespace, which builds the private read-only
   root (`isolation.build_root`), imports the common modules, and serves.

With the container backend (`sandbox/containers.py`) the container is the isolation: this module
is sent over the control socket and run by the container's own interpreter (`main_container`),
already an unprivileged uid in its own namespaces with a read-only root; the executor is the
container's pid 1 and wipes the container's `/tmp` instead of remounting it.

Per execution the executor mounts a fresh scratch tmpfs, forks, and the child drops to the
unprivileged uid under rlimits and seccomp before running the program (a Python program in the
already warm interpreter; a compiled one through `fexecve` of a memfd). The executor reads the
child's output while it runs, stopping it at the output cap or the wall-clock backstop; when the
child ends, `kill(-1, SIGKILL)` from pid 1 ends every process of the run, and all are reaped.
"""

from __future__ import annotations

import fcntl
import json
import os
import resource
import selectors
import signal
import sys
import time
from typing import Any

_CHUNK = 65536


def _boot_namespaces(config: dict[str, Any]) -> None:
    """Steps 1-2 of the module docstring; returns in the executor proper (pid 1 inside)."""
    from sandbox import isolation

    ready_r, ready_w = os.pipe()
    done_r, done_w = os.pipe()
    parent = os.getpid()
    helper = os.fork()
    if helper == 0:
        try:
            os.close(ready_w)
            os.close(done_r)
            if os.read(ready_r, 1) == b"u":
                isolation.write_id_maps(parent, config["uid_map"], config["gid_map"])
                os.write(done_w, b"k")
        finally:
            os._exit(0)
    os.close(ready_r)
    os.close(done_w)
    os.setgroups([])  # no supplementary group (root's included) may follow us in
    isolation.unshare(isolation.NAMESPACE_FLAGS)
    os.write(ready_w, b"u")
    ok = os.read(done_r, 1) == b"k"
    os.waitpid(helper, 0)
    if not ok:
        raise isolation.IsolationError(1, "could not write the user namespace id maps")
    executor = os.fork()
    if executor != 0:
        # The launcher only relays the executor's end; the executor dies with it (PDEATHSIG).
        signal.signal(signal.SIGTERM, lambda *_: os.kill(executor, signal.SIGKILL))
        _, status = os.waitpid(executor, 0)
        os._exit(os.waitstatus_to_exitcode(status) & 0xFF)
    isolation.set_parent_death_signal(signal.SIGKILL)
    os.setresgid(0, 0, 0)
    os.setresuid(0, 0, 0)
    isolation.set_hostname("sandbox")


_WARM_UP = """
def f(x, *args, **kwargs):
    return [x + 1, str(x) * 2, {"k": (x, 1.5)}, sorted({3, 1, 2})]
assert f(1)[0] == 2, "warm-up"
print(f(2), end="")
"""


def _warm_up() -> None:
    """Run the path every execution takes once here, before forking, then freeze the heap.

    The first `compile` in a process initialises the compiler's state; done in each child it cost
    about 1.5 ms of page faults per run. `gc.freeze` keeps the collector from touching (and so
    copying on write) every inherited object in each child.
    """
    import builtins
    import contextlib
    import gc
    import io

    from sandbox import harness

    with contextlib.redirect_stdout(io.StringIO()):
        exec(compile(_WARM_UP, "warmup.py", "exec"), {"__name__": "__main__", "__builtins__": builtins})
    json.loads(json.dumps(harness._json_ready([1, (2.5, "x"), {"k": None}])))
    # The path of a converted assert-mode test (sandbox/assertions.py): run often enough here for
    # the interpreter to specialise it before the fork rather than in every child.
    sample = [1, -2.5, "x", None, True, (1, "y"), {"k": [0.5]}, {3, 4}, frozenset({5})]
    for _ in range(64):
        harness.values.decode(json.loads(json.dumps(harness.values.encode(sample))))
    gc.collect()
    gc.freeze()


class Executor:
    """pid 1 of a slot's namespaces (or container); serves one execution message at a time.

    A message names the program (`kind` python: `code`; exec: a `binary` blob or a `path`, as
    for the compiler), its stdin, files to put in the scratch (`file:NAME` blobs), the limits, and
    for Python the judging mode; the reply carries how it ended and what it wrote.
    """

    def __init__(self, config: dict[str, Any]) -> None:
        from sandbox import isolation

        self.isolation = isolation
        self.config = config
        self.uid = int(config["run_uid"])
        self.seccomp = isolation.SeccompFilter()
        for module in config.get("preload", []):
            try:
                __import__(module)
            except ImportError:
                pass
        self.in_container = config.get("backend") == "containers"
        if not self.in_container:
            self._build_root(config)
        # Nothing of the service stays importable: its source tree is no longer mounted anyway.
        sys.path[:] = [p for p in sys.path if os.path.isdir(p)]
        _warm_up()
        self.env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/tmp", "TMPDIR": "/tmp", "LANG": "C.UTF-8"}

    def _build_root(self, config: dict[str, Any]) -> None:
        self.isolation.build_root(
            config["root"],
            config["ro_paths"],
            etc_files={
                "passwd": f"root:x:0:0::/:/bin/false\nsandbox:x:{self.uid}:{self.uid}::/tmp:/bin/false\n",
                "group": f"root:x:0:\nsandbox:x:{self.uid}:\n",
                "hostname": "sandbox\n",
                "hosts": "127.0.0.1 localhost sandbox\n",
            },
        )

    # --- one execution ---------------------------------------------------------------------------

    def execute(self, header: dict[str, Any], blobs: dict[str, bytes]) -> tuple[dict[str, Any], dict[str, bytes]]:
        limits = header["limits"]
        if self.in_container:
            _wipe("/tmp")
        else:
            self.isolation.mount_scratch("/tmp", int(self.config["scratch_mb"]), self.uid, self.uid)
        os.chdir("/tmp")
        for name, data in blobs.items():
            if name.startswith("file:"):
                path = "/tmp/" + os.path.basename(name[5:])
                with open(path, "wb") as f:
                    f.write(data)
                os.chown(path, self.uid, self.uid)
        stdin_fd = os.memfd_create("stdin", 0)
        os.write(stdin_fd, blobs.get("stdin", b""))
        os.lseek(stdin_fd, 0, os.SEEK_SET)
        program_fd = -1
        if "binary" in blobs:
            program_fd = os.memfd_create("program", 0)
            os.write(program_fd, blobs["binary"])
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        rep_r, rep_w = os.pipe()
        ready_r, ready_w = os.pipe()
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.monotonic()
        pid = os.fork()
        if pid == 0:
            self._child(header, blobs, stdin_fd, out_w, err_w, rep_w, program_fd, ready_w)
        for fd in (out_w, err_w, rep_w, stdin_fd, ready_w):
            os.close(fd)
        if program_fd >= 0:
            os.close(program_fd)
        outcome, streams, status, usage = self._supervise(pid, limits, started, out_r, err_r, rep_r)
        wall_ms = (time.monotonic() - started) * 1000
        self._kill_and_reap_all()
        if self.in_container:
            self.isolation.remove_sysv_ipc()  # the container's IPC namespace outlives the run
        self._drain(streams, limits)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu_ms = ((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)) * 1000
        os.set_blocking(ready_r, False)
        try:
            setup_ok = os.read(ready_r, 1) == b"k"
        except BlockingIOError:
            setup_ok = False
        for fd in (out_r, err_r, rep_r, ready_r):
            os.close(fd)
        reply: dict[str, Any] = {
            "exit_code": os.WEXITSTATUS(status) if os.WIFEXITED(status) else None,
            "signal": os.WTERMSIG(status) if os.WIFSIGNALED(status) else None,
            "killed": outcome,
            "setup_ok": setup_ok,
            "cpu_ms": round(cpu_ms, 3),
            "wall_ms": round(wall_ms, 3),
            "memory_kb": usage.ru_maxrss if usage is not None else 0,
        }
        out = {name: bytes(buf) for name, (_, buf) in streams.items()}
        output_name = header.get("output_name")
        if output_name and outcome is None and reply["exit_code"] == 0:
            try:
                with open("/tmp/" + os.path.basename(output_name), "rb") as f:
                    out["binary"] = f.read()
            except OSError:
                pass
        return reply, out

    def _supervise(self, pid: int, limits: dict[str, Any], started: float, out_r: int, err_r: int, rep_r: int):
        cap = int(limits["output_bytes"])
        streams = {"stdout": (out_r, bytearray()), "stderr": (err_r, bytearray()), "report": (rep_r, bytearray())}
        by_fd = {fd: name for name, (fd, _) in streams.items()}
        selector = selectors.DefaultSelector()
        pidfd = os.pidfd_open(pid)
        selector.register(pidfd, selectors.EVENT_READ)
        for fd in by_fd:
            os.set_blocking(fd, False)
            selector.register(fd, selectors.EVENT_READ)
        deadline = started + float(limits["wall_s"])
        outcome: str | None = None
        status, usage = 0, None
        try:
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    outcome = "wall"
                    break
                events = selector.select(remaining)
                exited = False
                for key, _ in events:
                    if key.fd == pidfd:
                        exited = True
                        continue
                    data = os.read(key.fd, _CHUNK)
                    if not data:
                        selector.unregister(key.fd)
                        continue
                    buf = streams[by_fd[key.fd]][1]
                    buf += data
                    if len(streams["stdout"][1]) + len(streams["stderr"][1]) > cap or len(streams["report"][1]) > cap:
                        outcome = "output"
                if outcome or exited:
                    break
            if outcome:
                os.kill(pid, signal.SIGKILL)
            _, status, usage = os.wait4(pid, 0)
        finally:
            selector.close()
            os.close(pidfd)
        return outcome, streams, status, usage

    @staticmethod
    def _kill_and_reap_all() -> None:
        """As pid 1, kill every other process in the namespace (background ones, `setsid` ones,
        forks, threads) and reap them all; kill again after each reap, in case one was forking."""
        while True:
            try:
                os.kill(-1, signal.SIGKILL)
            except ProcessLookupError:
                pass
            try:
                os.waitpid(-1, 0)
            except ChildProcessError:
                return

    @staticmethod
    def _drain(streams: dict[str, tuple[int, bytearray]], limits: dict[str, Any]) -> None:
        """Read what the run wrote before it ended; every writer is dead, so reads end at EOF."""
        cap = int(limits["output_bytes"])
        for _, (fd, buf) in streams.items():
            while len(buf) <= cap:
                try:
                    data = os.read(fd, _CHUNK)
                except BlockingIOError:
                    break
                if not data:
                    break
                buf += data

    def _child(self, header, blobs, stdin_fd, out_w, err_w, rep_w, program_fd, ready_w) -> None:
        """The run itself; never returns.

        Set-up success is one byte on `ready_w` (fd 5), written and closed before the program
        starts: the program cannot forge our own failure (which would turn its verdict into
        `sandbox_error`, a status the reward ignores, instead of a 0).
        """
        try:
            limits = header["limits"]
            # Move every source above the targets first, so no dup2 clobbers another source.
            sources = {0: stdin_fd, 1: out_w, 2: err_w, 3: rep_w, 5: ready_w}
            if program_fd >= 0:
                sources[4] = program_fd
            high = {target: fcntl.fcntl(fd, fcntl.F_DUPFD, 64) for target, fd in sources.items()}
            for target, fd in high.items():
                os.dup2(fd, target)
            if 4 not in high:
                os.closerange(4, 5)  # ignores a closed fd
            os.closerange(6, 1 << 16)
            os.setsid()
            if self.in_container:
                # Under the container's memory limit the kernel must pick the run, never us.
                with open("/proc/self/oom_score_adj", "w") as f:
                    f.write("1000")
            signal.signal(signal.SIGPIPE, signal.SIG_DFL)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            self.isolation.apply_run_limits(
                cpu_s=float(limits["cpu_s"]),
                memory_mb=int(limits["memory_mb"]),
                address_space_mb=int(limits.get("address_space_mb", limits["memory_mb"])),
                processes=int(limits["processes"]),
                file_mb=int(self.config["file_mb"]),
                open_files=int(self.config["open_files"]),
                stack_mb=int(limits.get("stack_mb", self.config["stack_mb"])),
            )
            if not self.in_container:
                # SysV IPC objects outlive their processes: a fresh IPC namespace per run keeps a
                # run's segments, semaphores and queues from the next run in this slot.
                self.isolation.unshare(self.isolation.CLONE_NEWIPC)
            self.isolation.drop_privileges(self.uid, self.uid)
            self.seccomp.load()
            os.write(5, b"k")
            os.close(5)
        except BaseException as exc:  # noqa: BLE001 - reported to the service as our own failure
            os.write(2, f"sandbox set-up failed: {exc!r}\n".encode())
            os._exit(121)
        if header["kind"] == "exec":
            try:
                os.execve(4 if program_fd >= 0 else header["path"], header["argv"], self.env)
            except OSError as exc:
                os.write(2, f"exec failed: {exc}\n".encode())
                os._exit(126)
        from sandbox import harness

        harness.run_python(header, blobs, self.env)


def _wipe(path: str) -> None:
    """Empty a directory the previous run may have left in any state (its files, its chmod 000 dirs)."""
    import shutil

    for root, dirs, _ in os.walk(path):
        for name in dirs:
            try:
                os.chmod(os.path.join(root, name), 0o700, follow_symlinks=False)
            except OSError:
                pass
    for entry in os.scandir(path):
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(entry.path, ignore_errors=True)
        else:
            try:
                os.unlink(entry.path)
            except OSError:
                pass


def serve(executor: Executor, channel_in: Any, channel_out: Any) -> None:
    from sandbox import protocol

    while True:
        message = protocol.read_message(channel_in)
        if message is None:
            return
        header, blobs = message
        try:
            reply, out = executor.execute(header, blobs)
        except Exception as exc:  # noqa: BLE001 - the service turns this into sandbox_error
            reply, out = {"error": f"{type(exc).__name__}: {exc}"}, {}
        channel_out.write(protocol.encode(reply, out))
        channel_out.flush()


def main() -> None:
    config = json.loads(sys.argv[1])
    sys.path.insert(0, config["import_root"])
    from sandbox import harness, isolation, protocol  # noqa: F401 - imported before the root goes

    _boot_namespaces(config)
    executor = Executor(config)
    os.write(1, _ready(executor))
    serve(executor, os.fdopen(0, "rb", buffering=_CHUNK), os.fdopen(1, "wb", buffering=0))


def _ready(executor: Executor) -> bytes:
    return b'{"ready":true,"seccomp":%s,"blobs":{}}\n' % (b"true" if executor.seccomp.available else b"false")


def main_container(config: dict[str, Any], channel: Any, channel_in: Any) -> None:
    """Entry point inside a container: serve over the control socket the bootstrap connected."""
    import socket

    assert isinstance(channel, socket.socket)
    executor = Executor(config)
    channel_out = channel.makefile("wb")
    channel_out.write(_ready(executor))
    channel_out.flush()
    serve(executor, channel_in, channel_out)


if __name__ == "__main__":
    main()

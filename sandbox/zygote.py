"""The warm executor: one per slot, a pre-started Python that forks once per execution.

Started by the service as `python -I -S -c BOOTSTRAP` (`sandbox/executors.py`): the bootstrap
reads this module and the ones it imports, plus the slot's configuration, from its stdin, so
neither the service's source path nor its configuration is on the command line or in a code
object's file name, where a run (forked from us) could read them. It then talks to the service
over stdin/stdout. Standard library only. Start-up, once per slot:

1. fork a helper that stays in the host namespaces, then `unshare` user, mount, net, ipc, uts and
   pid namespaces; the helper writes our uid/gid maps (inside 0 = the service's uid, inside
   RUN_UID = an unprivileged host uid of this slot), then exits;
2. fork the executor proper, pid 1 of the new pid namespace, which opens the slot's control
   group (`isolation.RunCgroup`), builds the private read-only root (`isolation.build_root`),
   imports the common modules, and serves.

**The executor is a clean fork origin.** It never holds a run's code, input, output or result:
it reads only a small control frame (limits, sizes), and the child it forks reads its own
program and input from the channel itself; what the run writes is moved by the kernel from the
run's pipes into memory files (`splice`) and from those to the service (`sendfile`), never through
this process's memory. So a run cannot find an earlier run's data in the heap it inherits.

Per execution the executor sets the run's cgroup limits, mounts a fresh scratch tmpfs and forks;
the child joins the cgroup, reads its program, and drops to the unprivileged uid under rlimits
and seccomp before running it (Python in the already warm interpreter; a native binary through
`fexecve` of a memfd). The executor stops the run at the output cap, at the CPU budget (measured
over every process of the cgroup) or at the wall-clock backstop, or when the service cancels it;
when the child ends, `kill(-1, SIGKILL)` from pid 1 ends every process of the run, and all are
reaped before the reply.

With the container backend (`sandbox/containers.py`) the container is the isolation: this module
is sent over the control socket and run by the container's own interpreter (`main_container`),
already an unprivileged uid in its own namespaces with a read-only root and the container's
cgroup limits; the executor is the container's pid 1 and wipes `/tmp` instead of remounting it.

Wire format on the channel, service -> executor: `m` + 10 decimal digits of length + a JSON
control frame, followed by the run's payload (a `protocol` message of `payload` bytes, read by
the child); a lone `x` cancels the run in progress (ignored when none is). Executor -> service:
one `protocol` message per run.
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
_CPU_POLL_MAX_S = 0.25


def _read_exact(fd: int, length: int) -> bytes:
    parts = []
    while length:
        data = os.read(fd, min(length, 1 << 20))
        if not data:
            raise EOFError("channel closed inside a message")
        parts.append(data)
        length -= len(data)
    return b"".join(parts)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def read_control(fd: int) -> dict[str, Any] | None:
    """The next control frame; stray cancel bytes (a cancel that met the run's end) are skipped."""
    while True:
        kind = os.read(fd, 1)
        if not kind:
            return None
        if kind == b"m":
            length = int(_read_exact(fd, 10))
            return json.loads(_read_exact(fd, length))
        if kind != b"x":
            raise ValueError(f"unexpected control byte {kind!r}")


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
    if config.get("cgroup"):
        isolation.RunCgroup.enter_resident(config["cgroup"])  # inherited by the executor
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
    os.close(ready_w)
    os.close(done_r)


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
    copying on write) every inherited object in each child. Only constants of our own go
    through here: the executor never sees a run's data.
    """
    import builtins
    import contextlib
    import gc
    import io

    from sandbox import harness, protocol

    with contextlib.redirect_stdout(io.StringIO()):
        exec(compile(_WARM_UP, "warmup.py", "exec"), {"__name__": "__main__", "__builtins__": builtins})
    json.loads(json.dumps(harness._json_ready([1, (2.5, "x"), {"k": None}])))
    protocol.decode(protocol.encode({"kind": "python", "mode": "stdio"}, {"code": b"pass", "stdin": b""}))
    # The path of a converted assert-mode test (sandbox/assertions.py): run often enough here for
    # the interpreter to specialise it before the fork rather than in every child.
    sample = [1, -2.5, "x", None, True, (1, "y"), {"k": [0.5]}, {3, 4}, frozenset({5})]
    for _ in range(64):
        harness.values.decode(json.loads(json.dumps(harness.values.encode(sample))))
    gc.collect()
    gc.freeze()


class Executor:
    """pid 1 of a slot's namespaces (or container); serves one execution at a time.

    A control frame carries the limits, the payload's size and, for a compiler, the name of the
    file to send back; the payload (read by the child) names the program (`kind` python: `code`;
    exec: a `binary` blob or a `path`), its stdin, files to put in the scratch (`file:NAME`
    blobs), and for Python the judging mode. The reply says how the run ended and carries what
    it wrote.
    """

    def __init__(self, config: dict[str, Any], channel_in: int, channel_out: int) -> None:
        from sandbox import isolation

        self.isolation = isolation
        self.channel_in = channel_in
        self.channel_out = channel_out
        self.uid = int(config["run_uid"])
        self.scratch_mb = int(config["scratch_mb"])
        self.file_mb = int(config["file_mb"])
        self.open_files = int(config["open_files"])
        self.stack_mb = int(config["stack_mb"])
        self.seccomp = isolation.SeccompFilter()
        for module in config.get("preload", []):
            try:
                __import__(module)
            except ImportError:
                pass
        self.in_container = config.get("backend") == "containers"
        spec = config.get("cgroup")
        self.cgroup = isolation.RunCgroup(spec) if spec else None
        self.cpus = float(config.get("cpus", 1.0))
        if not self.in_container:
            self._build_root(config)
        # Nothing of the service stays importable: its source tree is no longer mounted anyway.
        sys.path[:] = [p for p in sys.path if os.path.isdir(p)]
        config.clear()  # host paths and id maps: a run never finds them in its inherited heap
        _warm_up()
        self.env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/tmp", "TMPDIR": "/tmp", "LANG": "C.UTF-8"}
        self.poisoned = False  # the channel lost its framing: reply, then exit for a restart

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

    def execute(self, control: dict[str, Any]) -> None:
        """Run one execution and write its reply to the channel."""
        limits = control["limits"]
        if self.in_container:
            _wipe("/tmp")
        else:
            self.isolation.mount_scratch("/tmp", self.scratch_mb, self.uid, self.uid)
        os.chdir("/tmp")
        if self.cgroup is not None:
            self.cgroup.prepare(int(limits["memory_mb"]), int(limits["processes"]))
        cpu_before = self.cgroup.cpu_ns() if self.cgroup is not None and self.cgroup.measures_cpu else None
        pipes = {name: os.pipe() for name in ("stdout", "stderr", "report", "ready")}
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.monotonic()
        pid = os.fork()
        if pid == 0:
            self._child(control, {name: w for name, (_, w) in pipes.items()})
        for _, w in pipes.values():
            os.close(w)
        sinks = {name: os.memfd_create(name, os.MFD_CLOEXEC) for name in ("stdout", "stderr", "report")}
        reads = {name: r for name, (r, _) in pipes.items()}
        outcome, status, usage, flags = self._supervise(pid, limits, started, reads, sinks, cpu_before)
        wall_ms = (time.monotonic() - started) * 1000
        self._kill_and_reap_all()
        if self.in_container:
            self.isolation.remove_sysv_ipc()  # the container's IPC namespace outlives the run
        flags += self._drain(reads, sinks, limits)
        if cpu_before is not None:
            cpu_ms = (self.cgroup.cpu_ns() - cpu_before) / 1e6  # type: ignore[union-attr]
        else:
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu_ms = ((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)) * 1000
        memory_kb = usage.ru_maxrss if usage is not None else 0
        hit_memory = False
        if self.cgroup is not None:
            memory_kb = max(memory_kb, self.cgroup.peak_kb())
            hit_memory = self.cgroup.hit_memory_limit()
        for fd in reads.values():
            os.close(fd)
        if b"p" not in flags:
            self.poisoned = True  # the child died before reading its payload: framing is lost
        reply: dict[str, Any] = {
            "exit_code": os.WEXITSTATUS(status) if os.WIFEXITED(status) else None,
            "signal": os.WTERMSIG(status) if os.WIFSIGNALED(status) else None,
            "killed": outcome,
            "setup_ok": b"k" in flags,
            "compile_error": b"e" in flags,
            "memory_limit_hit": hit_memory,
            "cpu_ms": round(cpu_ms, 3),
            "wall_ms": round(wall_ms, 3),
            "memory_kb": memory_kb,
        }
        cap = int(limits["output_bytes"])
        parts = [(name, fd, min(os.fstat(fd).st_size, cap)) for name, fd in sinks.items()]
        output_name = control.get("output_name")
        if output_name and outcome is None and reply["exit_code"] == 0:
            try:
                artifact = os.open("/tmp/" + os.path.basename(output_name), os.O_RDONLY | os.O_CLOEXEC)
                parts.append(("binary", artifact, os.fstat(artifact).st_size))
            except OSError:
                pass
        if self.poisoned:
            reply = {"error": "the run ended before it read its program; restarting the executor"}
            parts = []
        self._reply(reply, parts)
        for _, fd, _ in parts:
            os.close(fd)
        for fd in sinks.values():
            try:
                os.close(fd)
            except OSError:
                pass
        if not self.in_container:
            # The run's files are charged to its cgroup; unmounting frees them now, not at the next run.
            try:
                os.chdir("/")
                self.isolation.umount("/tmp")
            except OSError:
                pass

    def _reply(self, header: dict[str, Any], parts: list[tuple[str, int, int]]) -> None:
        """A `protocol` message whose blobs go from memory files to the channel inside the kernel."""
        head = dict(header, blobs={name: size for name, _, size in parts})
        _write_all(self.channel_out, json.dumps(head, separators=(",", ":")).encode() + b"\n")
        for _, fd, size in parts:
            offset = 0
            while offset < size:
                sent = os.sendfile(self.channel_out, fd, offset, size - offset)
                if sent == 0:
                    raise EOFError("a run's output file ended early")
                offset += sent

    def _supervise(self, pid: int, limits: dict[str, Any], started: float, reads: dict[str, int],
                   sinks: dict[str, int], cpu_before: int | None) -> tuple[str | None, int, Any, bytes]:
        """Move output while the run lasts; stop it at the output cap, the CPU budget, the wall
        clock, or a cancel from the service. Returns (outcome, wait status, rusage, ready flags)."""
        cap = int(limits["output_bytes"])
        cpu_budget_ns = float(limits["cpu_s"]) * 1e9
        sizes = {name: 0 for name in sinks}
        flags = b""
        selector = selectors.DefaultSelector()
        pidfd = os.pidfd_open(pid)
        selector.register(pidfd, selectors.EVENT_READ, "exit")
        for name, fd in reads.items():
            os.set_blocking(fd, False)
            selector.register(fd, selectors.EVENT_READ, name)
        deadline = started + float(limits["wall_s"])
        next_cpu_check = started + min(_CPU_POLL_MAX_S, float(limits["cpu_s"]) / self.cpus)
        outcome: str | None = None
        status, usage = 0, None
        channel_watched = False
        try:
            while True:
                now = time.monotonic()
                if now >= deadline:
                    outcome = "wall"
                    break
                if cpu_before is not None and now >= next_cpu_check:
                    used = self.cgroup.cpu_ns() - cpu_before  # type: ignore[union-attr]
                    if used >= cpu_budget_ns:
                        outcome = "cpu"
                        break
                    # The group runs on at most `cpus` cores: the budget cannot run out sooner.
                    next_cpu_check = now + max(0.005, min(_CPU_POLL_MAX_S, (cpu_budget_ns - used) / 1e9 / self.cpus))
                wait = min(deadline, next_cpu_check if cpu_before is not None else deadline) - now
                exited = False
                for key, _ in selector.select(max(0.0, wait)):
                    what = key.data
                    if what == "exit":
                        exited = True
                    elif what == "ready":
                        data = os.read(key.fd, 16)
                        if not data:
                            selector.unregister(key.fd)
                        flags += data
                        if b"p" in flags and not channel_watched:
                            # The child has its payload: from now on the channel may only carry a cancel.
                            selector.register(self.channel_in, selectors.EVENT_READ, "channel")
                            channel_watched = True
                    elif what == "channel":
                        byte = os.read(self.channel_in, 1)
                        if byte == b"x":
                            outcome = "cancelled"
                        else:
                            self.poisoned = True
                            outcome = "cancelled"
                    else:
                        moved = self._move(key.fd, sinks[what])
                        if moved <= 0:
                            if moved == 0:
                                selector.unregister(key.fd)
                            continue
                        sizes[what] += moved
                        if sizes["stdout"] + sizes["stderr"] > cap or sizes["report"] > cap:
                            outcome = "output"
                if outcome or exited:
                    break
            if outcome:
                os.kill(pid, signal.SIGKILL)
            _, status, usage = os.wait4(pid, 0)
        finally:
            selector.close()
            os.close(pidfd)
        return outcome, status, usage, flags

    @staticmethod
    def _move(pipe: int, sink: int) -> int:
        """Splice what the pipe holds into the memory file; 0 at end of stream."""
        try:
            return os.splice(pipe, sink, _CHUNK)
        except BlockingIOError:
            return -1

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

    def _drain(self, reads: dict[str, int], sinks: dict[str, int], limits: dict[str, Any]) -> bytes:
        """Move what the run wrote before it ended; every writer is dead, so reads end at EOF."""
        cap = int(limits["output_bytes"])
        flags = b""
        for name, fd in reads.items():
            if name == "ready":
                try:
                    flags += os.read(fd, 16)
                except BlockingIOError:
                    pass
                continue
            while os.fstat(sinks[name]).st_size <= cap and self._move(fd, sinks[name]) > 0:
                pass
        return flags

    def _child(self, control: dict[str, Any], writers: dict[str, int]) -> None:
        """The run itself; never returns.

        It first reads its own payload from the channel (so the executor never holds it) and
        joins the run's cgroup. Set-up success is bytes on `ready` (fd 5), written and closed
        before the program starts: `p` payload read, `k` set-up done, and for Python `c`
        compiled or `e` a compile error. The program cannot forge our own failure (which would
        turn its verdict into `sandbox_error`, a status the reward ignores) nor a compile error.
        """
        from sandbox import protocol

        try:
            payload = _read_exact(self.channel_in, int(control["payload"]))
            os.write(writers["ready"], b"p")
            header, blobs = protocol.decode(payload)
            del payload
            if self.cgroup is not None:
                self.cgroup.join()
            limits = control["limits"]
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
                os.write(program_fd, blobs.pop("binary"))
            # Move every source above the targets first, so no dup2 clobbers another source.
            sources = {0: stdin_fd, 1: writers["stdout"], 2: writers["stderr"], 3: writers["report"], 5: writers["ready"]}
            if program_fd >= 0:
                sources[4] = program_fd
            high = {target: fcntl.fcntl(fd, fcntl.F_DUPFD, 64) for target, fd in sources.items()}
            for target, fd in high.items():
                os.dup2(fd, target)
            if 4 not in high:
                os.closerange(4, 5)  # ignores a closed fd
            os.closerange(6, 1 << 16)  # the channel and the cgroup files included
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
                file_mb=self.file_mb,
                open_files=self.open_files,
                stack_mb=int(limits.get("stack_mb", self.stack_mb)),
            )
            if not self.in_container:
                # SysV IPC objects outlive their processes: a fresh IPC namespace per run keeps a
                # run's segments, semaphores and queues from the next run in this slot. A cgroup
                # namespace shows the run its own group as "/", no host path.
                self.isolation.unshare(self.isolation.CLONE_NEWIPC | self.isolation.CLONE_NEWCGROUP)
            self.isolation.drop_privileges(self.uid, self.uid)
            self.seccomp.load()
            os.write(5, b"k")
        except BaseException as exc:  # noqa: BLE001 - reported to the service as our own failure
            os.write(2, f"sandbox set-up failed: {exc!r}\n".encode())
            os._exit(121)
        if header["kind"] == "exec":
            os.close(5)
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


def serve(executor: Executor) -> None:
    """Serve executions until the channel closes; exit (for a restart) when the framing is lost."""
    while True:
        control = read_control(executor.channel_in)
        if control is None:
            return
        try:
            executor.execute(control)
        except Exception as exc:  # noqa: BLE001 - the service turns this into sandbox_error and restarts us
            _write_all(executor.channel_out, json.dumps({"error": f"{type(exc).__name__}: {exc}", "blobs": {}}).encode() + b"\n")
            return
        if executor.poisoned:
            return


def _ready(executor: Executor) -> bytes:
    return b'{"ready":true,"seccomp":%s,"blobs":{}}\n' % (b"true" if executor.seccomp.available else b"false")


def main(config: dict[str, Any]) -> None:
    """Entry point of a local executor (the namespaces backend), called by the bootstrap."""
    _boot_namespaces(config)
    executor = Executor(config, 0, 1)
    _write_all(1, _ready(executor))
    serve(executor)


def main_container(config: dict[str, Any], channel: Any, channel_in: Any) -> None:
    """Entry point inside a container: serve over the control socket the bootstrap connected."""
    import socket

    assert isinstance(channel, socket.socket)
    executor = Executor(config, channel.fileno(), channel.fileno())
    _write_all(channel.fileno(), _ready(executor))
    serve(executor)

"""Linux isolation primitives for the warm executors: namespaces, a private root, rlimits, seccomp.

Standard library only (ctypes over libc and libseccomp), because this module is imported by the
executor process (`sandbox/zygote.py`) before it locks itself into its namespaces, where nothing
but the Python runtime is visible.

What one executor slot gets, once, at start (`enter_slot_namespaces` + `build_root`):
- new user, mount, network, ipc, uts and pid namespaces; the slot's process is pid 1 of its pid
  namespace, so after every run it can kill *every* other process in it with `kill(-1, SIGKILL)`;
- a root made of a small tmpfs with read-only bind mounts of the runtime (`/usr`, the Python
  prefix), a minimal `/dev` and `/etc`, no `/proc`, no host `/tmp`, no project files;
- the network namespace has only a down loopback: no route anywhere, not even to the host.

What every run gets, per fork (`apply_run_limits`, `drop_privileges`, `SeccompFilter.load`):
- a fresh size-limited tmpfs at `/tmp` (the scratch), rlimits (CPU, address space, processes,
  file size, open files, no core), an unprivileged uid with no capabilities and `no_new_privs`,
  and a seccomp deny-list against namespace, mount, ptrace, kernel-module, bpf and non-unix
  socket calls.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import resource
from collections.abc import Iterable, Sequence
from typing import Any

CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
NAMESPACE_FLAGS = CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET

MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_REMOUNT = 32
MS_NOATIME = 1024
MS_NODIRATIME = 2048
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18
MS_RELATIME = 1 << 21
MNT_DETACH = 2
# statvfs's ST_* flags share MS_* values for these; a bind remount must keep the locked ones.
_KEPT_MOUNT_FLAGS = MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_NOATIME | MS_NODIRATIME | MS_RELATIME

PR_SET_PDEATHSIG = 1
PR_SET_NO_NEW_PRIVS = 38
SYS_PIVOT_ROOT = 155  # x86_64

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
_libc.unshare.argtypes = [ctypes.c_int]
_libc.sethostname.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
_libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
_libc.syscall.argtypes = [ctypes.c_long, ctypes.c_char_p, ctypes.c_char_p]


class IsolationError(OSError):
    """The platform refused an isolation step: the slot cannot start (never run code without it)."""


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise IsolationError(err, f"{what}: {os.strerror(err)}")


def unshare(flags: int) -> None:
    _check(_libc.unshare(flags), f"unshare({flags:#x})")


def mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    enc = lambda s: None if s is None else s.encode()  # noqa: E731 - local shorthand
    _check(_libc.mount(enc(source), target.encode(), enc(fstype), flags, enc(data)), f"mount {source} on {target}")


def umount(target: str) -> None:
    _check(_libc.umount2(target.encode(), MNT_DETACH), f"umount {target}")


def set_parent_death_signal(signum: int) -> None:
    _check(_libc.prctl(PR_SET_PDEATHSIG, signum, 0, 0, 0), "prctl(PR_SET_PDEATHSIG)")


def set_no_new_privs() -> None:
    _check(_libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl(PR_SET_NO_NEW_PRIVS)")


def write_id_maps(pid: int, uid_map: str, gid_map: str) -> None:
    """Write a child user namespace's id maps; must run in the parent namespace (we are root there)."""
    with open(f"/proc/{pid}/setgroups", "w") as f:
        f.write("deny")
    with open(f"/proc/{pid}/uid_map", "w") as f:
        f.write(uid_map)
    with open(f"/proc/{pid}/gid_map", "w") as f:
        f.write(gid_map)


def _bind_readonly(source: str, target: str) -> None:
    mount(source, target, None, MS_BIND | MS_REC)
    kept = os.statvfs(source).f_flag & _KEPT_MOUNT_FLAGS
    mount(None, target, None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | kept)


def _mkdirs_for(root: str, path: str, *, is_file: bool) -> str:
    target = root + path
    os.makedirs(os.path.dirname(target) if is_file else target, exist_ok=True)
    if is_file and not os.path.exists(target):
        open(target, "w").close()
    return target


def build_root(
    root: str,
    ro_paths: Iterable[str],
    devices: Sequence[str] = ("/dev/null", "/dev/zero", "/dev/random", "/dev/urandom"),
    etc_files: dict[str, str] | None = None,
    ro_etc_binds: Sequence[str] = ("/etc/ld.so.cache",),
) -> None:
    """Make `root` the process's `/`: a read-only tmpfs holding only the runtime; detach the host's.

    `ro_paths` are bound read-only at the same path (symlinks such as Debian's `/lib -> usr/lib`
    are recreated as symlinks). `/tmp` is left as an empty mount point for the per-run scratch.
    """
    mount(None, "/", None, MS_REC | MS_PRIVATE)
    mount("sandbox-root", root, "tmpfs", MS_NOSUID | MS_NODEV, "size=4m,mode=0755")
    for path in ro_paths:
        if os.path.islink(path):
            link = root + path
            os.makedirs(os.path.dirname(link), exist_ok=True)
            if not os.path.lexists(link):
                os.symlink(os.readlink(path), link)
        elif os.path.isdir(path):
            _bind_readonly(path, _mkdirs_for(root, path, is_file=False))
        elif os.path.exists(path):
            _bind_readonly(path, _mkdirs_for(root, path, is_file=True))
    os.makedirs(root + "/dev", exist_ok=True)
    mount("sandbox-dev", root + "/dev", "tmpfs", MS_NOSUID | MS_NOEXEC, "size=64k,mode=0755")
    for device in devices:
        # Bind mounts keep the host devtmpfs's permission to open the node; mknod is not allowed here.
        mount(device, _mkdirs_for(root, device, is_file=True), None, MS_BIND)
    for name, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"), ("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2")):
        os.symlink(target, f"{root}/dev/{name}")
    # POSIX shared memory and semaphores (multiprocessing) live in the run's scratch, so they are
    # private to the run and wiped with it.
    os.symlink("/tmp", root + "/dev/shm")
    os.makedirs(root + "/etc", exist_ok=True)
    for name, text in (etc_files or {}).items():
        with open(f"{root}/etc/{name}", "w") as f:
            f.write(text)
    for path in ro_etc_binds:
        if os.path.exists(path):
            _bind_readonly(path, _mkdirs_for(root, path, is_file=True))
    for empty in ("/tmp", "/proc"):
        os.makedirs(root + empty, exist_ok=True)
    os.chmod(root + "/tmp", 0o1777)
    # The slot's own /proc, mounted while the host's is still in view (the kernel allows a new
    # proc mount only then). hidepid: a run sees only its own processes, never the executor.
    mount("proc", root + "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, "hidepid=invisible")
    os.chdir(root)
    # pivot_root(".", "."): the old root ends up stacked under the new one; detaching it leaves
    # nothing of the host reachable from this mount namespace.
    _check(_libc.syscall(SYS_PIVOT_ROOT, b".", b"."), "pivot_root")
    umount(".")
    os.chdir("/")
    mount(None, "/", None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)


def mount_scratch(path: str, size_mb: int, uid: int, gid: int) -> None:
    """A fresh tmpfs for one run: nothing of the previous run's files survives the remount."""
    try:
        umount(path)
    except IsolationError as exc:
        if exc.errno != errno.EINVAL:  # EINVAL: nothing mounted there yet
            raise
    mount("sandbox-scratch", path, "tmpfs", MS_NOSUID | MS_NODEV,
          f"size={size_mb}m,nr_inodes=4096,mode=0700,uid={uid},gid={gid}")


def apply_run_limits(cpu_s: float, memory_mb: int, address_space_mb: int, processes: int, file_mb: int,
                     open_files: int, stack_mb: int) -> None:
    """rlimits of one run. The CPU limit is rounded up to whole seconds (the kernel's unit); the
    caller decides `time_limit` from the measured CPU time, the rlimit only stops a spin.
    `memory_mb` bounds private writable memory (data segment); `address_space_mb` all mappings
    (the same for most languages; unlimited for runtimes that reserve address space, see
    `sandbox/languages.py`)."""
    cpu = max(1, int(-(-cpu_s // 1)))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    space = resource.RLIM_INFINITY if address_space_mb >= 1 << 30 else address_space_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (space, space))
    data = memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_DATA, (data, data))
    stack = min(stack_mb, memory_mb) * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_STACK, (stack, stack))
    resource.setrlimit(resource.RLIMIT_NPROC, (processes, processes))
    resource.setrlimit(resource.RLIMIT_FSIZE, (file_mb * 1024 * 1024, file_mb * 1024 * 1024))
    resource.setrlimit(resource.RLIMIT_NOFILE, (open_files, open_files))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_MEMLOCK, (0, 0))


def drop_privileges(uid: int, gid: int) -> None:
    """Become `uid` inside the user namespace: a non-zero uid loses every capability.

    Supplementary groups were dropped before the namespace was made (`setgroups` is denied inside).
    """
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)
    set_no_new_privs()


# --- seccomp deny-list through libseccomp -------------------------------------------------------

_SCMP_ACT_ALLOW = 0x7FFF0000
_SCMP_CMP_NE = 1
_SCMP_CMP_MASKED_EQ = 7
DENIED_SYSCALLS = (
    "ptrace", "process_vm_readv", "process_vm_writev", "mount", "umount2", "pivot_root", "chroot",
    "unshare", "setns", "move_mount", "open_tree", "fsopen", "fsmount", "fsconfig", "fspick",
    "mount_setattr", "kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module",
    "bpf", "perf_event_open", "keyctl", "add_key", "request_key", "userfaultfd", "reboot", "swapon",
    "swapoff", "acct", "quotactl", "open_by_handle_at", "name_to_handle_at", "syslog", "sethostname",
    "setdomainname", "settimeofday", "clock_settime", "adjtimex", "iopl", "ioperm", "fanotify_init",
    "io_uring_setup", "mknod", "mknodat", "vhangup", "lookup_dcookie", "personality",
)


class _ArgCmp(ctypes.Structure):
    _fields_ = [("arg", ctypes.c_uint), ("op", ctypes.c_int), ("datum_a", ctypes.c_uint64), ("datum_b", ctypes.c_uint64)]


class SeccompFilter:
    """A deny-list filter built once in the executor and loaded into each run after fork.

    Denied calls fail with EPERM (ENOSYS for `clone3`, so the C library falls back to `clone`,
    whose namespace flags are then refused). `available` is False where libseccomp is missing;
    the executor then runs with namespaces and rlimits only and says so in `/readyz`.
    """

    def __init__(self) -> None:
        self._ctx: int | None = None
        name = ctypes.util.find_library("seccomp")
        if name is None:
            return
        lib = ctypes.CDLL(name, use_errno=True)
        lib.seccomp_init.restype = ctypes.c_void_p
        lib.seccomp_init.argtypes = [ctypes.c_uint32]
        lib.seccomp_rule_add_array.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int, ctypes.c_uint, ctypes.POINTER(_ArgCmp)]
        lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
        lib.seccomp_load.argtypes = [ctypes.c_void_p]
        self._lib = lib
        ctx = lib.seccomp_init(_SCMP_ACT_ALLOW)
        if not ctx:
            return
        deny = 0x00050000 | errno.EPERM  # SCMP_ACT_ERRNO(EPERM)
        for syscall in DENIED_SYSCALLS:
            self._add(ctx, deny, syscall, [])
        self._add(ctx, 0x00050000 | errno.ENOSYS, "clone3", [])
        # No sockets but unix ones (multiprocessing uses socketpair); the net namespace is empty anyway.
        self._add(ctx, 0x00050000 | errno.EACCES, "socket", [_ArgCmp(0, _SCMP_CMP_NE, 1, 0)])
        for flag in (CLONE_NEWNS, CLONE_NEWCGROUP, CLONE_NEWUTS, CLONE_NEWIPC, CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET):
            self._add(ctx, deny, "clone", [_ArgCmp(0, _SCMP_CMP_MASKED_EQ, flag, flag)])
        self._ctx = ctx

    def _add(self, ctx: int, action: int, syscall: str, args: list[_ArgCmp]) -> None:
        number = self._lib.seccomp_syscall_resolve_name(syscall.encode())
        if number < 0:  # not a syscall on this architecture
            return
        array = (_ArgCmp * len(args))(*args) if args else None
        result = self._lib.seccomp_rule_add_array(ctx, action, number, len(args), array)
        if result != 0:
            raise IsolationError(-result, f"seccomp rule for {syscall}: {os.strerror(-result)}")

    @property
    def available(self) -> bool:
        return self._ctx is not None

    def load(self) -> None:
        if self._ctx is None:
            return
        result = self._lib.seccomp_load(self._ctx)
        if result != 0:
            raise IsolationError(-result, f"seccomp_load: {os.strerror(-result)}")


_IPC_RMID = 0
_libc.shmctl.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_void_p]
_libc.semctl.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
_libc.msgctl.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_void_p]


def remove_sysv_ipc() -> None:
    """Remove every SysV shared memory segment, semaphore set and message queue we may remove
    (where a run cannot get a namespace of its own: the container backend)."""
    removers = {"shm": lambda i: _libc.shmctl(i, _IPC_RMID, None), "sem": lambda i: _libc.semctl(i, 0, _IPC_RMID),
                "msg": lambda i: _libc.msgctl(i, _IPC_RMID, None)}
    for kind, remove in removers.items():
        try:
            with open(f"/proc/sysvipc/{kind}") as table:
                rows = table.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            remove(int(row.split()[1]))


def set_hostname(name: str) -> None:
    raw = name.encode()
    _check(_libc.sethostname(raw, len(raw)), "sethostname")


# --- the run's control group (set up by the service, `rewardstack.sandbox.cgroups`) --------------


def _fd_write(fd: int, value: str) -> None:
    os.lseek(fd, 0, os.SEEK_SET)
    os.write(fd, value.encode())


def _fd_read(fd: int) -> str:
    return os.pread(fd, 65536, 0).decode()


def _field(text: str, name: str) -> int:
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        if key == name:
            return int(value)
    return 0


class RunCgroup:
    """The slot's control group as the executor uses it: per-run limits, joining, accounting.

    Its files are opened once, before the executor pivots into its private root (where no
    cgroup filesystem is mounted); a run joins by writing to the kept `cgroup.procs` descriptors
    right after its fork, before anything of the program runs. `spec` comes from the service:
    v2 `{"version": 2, "dir"}`, v1 `{"version": 1, "dirs": {controller: dir}}`.

    On v1 each hierarchy is joined by its own write, and each migration costs the kernel a
    grace period; so the executor itself lives in the slot's `cpu`, `cpuacct` and `pids` groups
    (`enter_resident`, at start) and a run joins only `memory`, whose charges must be the run's
    alone. The executor's share of those three is small and fixed: its own CPU while it watches
    a run (it is idle otherwise) and its processes, which `prepare` adds to `pids.max`.
    """

    RESIDENT_V1 = ("cpu", "cpuacct", "pids")

    @classmethod
    def enter_resident(cls, spec: dict[str, Any]) -> None:
        """Move the calling process (the launcher, before it forks the executor) into the slot's
        groups it keeps for good (v1); nothing on v2, where one write joins every controller."""
        if int(spec["version"]) != 1:
            return
        for directory in sorted({d for c, d in spec["dirs"].items() if c in cls.RESIDENT_V1}):
            with open(f"{directory}/cgroup.procs", "w") as f:
                f.write("0")


    def __init__(self, spec: dict[str, Any]) -> None:
        self.version = int(spec["version"])
        self._memory_bytes = -1
        flags = os.O_RDWR | os.O_CLOEXEC
        if self.version == 2:
            d = spec["dir"]
            self.procs = [os.open(f"{d}/cgroup.procs", flags)]
            self.memory_max = os.open(f"{d}/memory.max", flags)
            self.swap_max = self._optional(f"{d}/memory.swap.max", flags)
            self.pids_max = os.open(f"{d}/pids.max", flags)
            self.events = os.open(f"{d}/memory.events", os.O_RDONLY | os.O_CLOEXEC)
            self.peak = self._optional(f"{d}/memory.peak", flags)
            self.cpu = os.open(f"{d}/cpu.stat", os.O_RDONLY | os.O_CLOEXEC)
            if self.swap_max >= 0:
                _fd_write(self.swap_max, "0")
        else:
            dirs = spec["dirs"]
            self.procs = [os.open(f"{dirs['memory']}/cgroup.procs", flags)]
            m = dirs["memory"]
            self.memory_max = os.open(f"{m}/memory.limit_in_bytes", flags)
            self.swap_max = self._optional(f"{m}/memory.memsw.limit_in_bytes", flags)
            self.failcnt = os.open(f"{m}/memory.failcnt", flags)
            self.peak = os.open(f"{m}/memory.max_usage_in_bytes", flags)
            self.oom_control = os.open(f"{m}/memory.oom_control", os.O_RDONLY | os.O_CLOEXEC)
            self.force_empty = self._optional(f"{m}/memory.force_empty", os.O_WRONLY | os.O_CLOEXEC)
            self.pids_max = os.open(f"{dirs['pids']}/pids.max", flags)
            self.pids_current = os.open(f"{dirs['pids']}/pids.current", os.O_RDONLY | os.O_CLOEXEC)
            self.cpu = self._optional(f"{dirs['cpuacct']}/cpuacct.usage", os.O_RDONLY | os.O_CLOEXEC) if "cpuacct" in dirs else -1
            self._memory_bytes = int(_fd_read(self.memory_max).strip())
        self._events_before = (0, 0)

    @staticmethod
    def _optional(path: str, flags: int) -> int:
        try:
            return os.open(path, flags)
        except OSError:
            return -1

    @property
    def measures_cpu(self) -> bool:
        return self.cpu >= 0

    def _memory_events(self) -> tuple[int, int]:
        """(times usage hit the limit, OOM kills) so far."""
        if self.version == 2:
            text = _fd_read(self.events)
            return _field(text, "max"), _field(text, "oom_kill")
        return int(_fd_read(self.failcnt).strip() or 0), _field(_fd_read(self.oom_control), "oom_kill")

    def _set_memory(self, limit: int) -> None:
        if self.version == 2:
            _fd_write(self.memory_max, str(limit))
            return
        # v1 keeps memory+swap >= memory at every step: raise memsw first, lower it last.
        order = [self.swap_max, self.memory_max] if limit > self._memory_bytes else [self.memory_max, self.swap_max]
        for fd in order:
            if fd < 0:
                continue
            try:
                _fd_write(fd, str(limit))
            except OSError as exc:
                if exc.errno != errno.EBUSY or self.force_empty < 0:
                    raise
                # Page cache of the previous run is still charged: drop it, the group is empty.
                _fd_write(self.force_empty, "0")
                _fd_write(fd, str(limit))

    def prepare(self, memory_mb: int, processes: int) -> None:
        """Set one run's limits on the (empty) group and reset its counters."""
        limit = memory_mb * 1024 * 1024
        if limit != self._memory_bytes:
            self._set_memory(limit)
            self._memory_bytes = limit
        elif self.version == 1:
            self._memory_bytes = limit
        resident = int(_fd_read(self.pids_current).strip() or 0) if self.version == 1 else 0
        _fd_write(self.pids_max, str(processes + resident))
        if self.version == 1:
            _fd_write(self.peak, "0")
            _fd_write(self.failcnt, "0")
        elif self.peak >= 0:
            try:
                _fd_write(self.peak, "reset")  # per-descriptor reset (Linux 6.12+)
            except OSError:
                pass
        self._events_before = self._memory_events()

    def join(self) -> None:
        """Move the calling process into the group (in the run's child, right after fork)."""
        for fd in self.procs:
            os.write(fd, b"0")

    def cpu_ns(self) -> int:
        """CPU time of every process the group ever held, in nanoseconds."""
        if self.version == 2:
            return _field(_fd_read(self.cpu), "usage_usec") * 1000
        return int(_fd_read(self.cpu).strip() or 0)

    def peak_kb(self) -> int:
        if self.peak < 0:
            return 0
        return int(_fd_read(self.peak).strip() or 0) // 1024

    def hit_memory_limit(self) -> bool:
        """Whether, since `prepare`, an allocation of the run met the limit (reclaim, refusal or OOM kill)."""
        hits, kills = self._memory_events()
        return hits > self._events_before[0] or kills > self._events_before[1]

"""The service side of the runs' control groups: find a usable hierarchy, make one group per slot, remove them.

Every run of a slot is moved (by itself, right after its fork) into that slot's group, so its
memory (anonymous, memfd, SysV and POSIX shared memory, tmpfs pages of its scratch), its number of
processes and threads, and its CPU time are limited and measured for the whole run, not per
process. The executor sets the per-run values before each fork (`isolation.RunCgroup`).

Both hierarchies are supported:
- cgroup v2 (`memory.max`, `memory.swap.max`, `pids.max`, `cpu.max`, `cpu.stat`), where the
  service's own group can delegate `memory pids cpu` to children (the service moves itself into
  a leaf of its group when the group holds it, as the "no internal processes" rule asks);
- cgroup v1 (`memory`, `pids`, `cpu` and, when mounted, `cpuacct` hierarchies), where root can
  create child groups.

Groups are named `rewardstack-sandbox-<pid>-<random>` under the service's own group, so replicas
and tests on one machine never share or touch another's; `CgroupTree.remove` deletes them. With
neither hierarchy usable the sandbox refuses to start (`CgroupUnavailable`, one line saying why):
it never runs code with per-process limits only.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any

V1_REQUIRED = ("memory", "pids", "cpu")
V2_REQUIRED = ("memory", "pids", "cpu")
PREFIX = "rewardstack-sandbox-"
CPU_PERIOD_US = 100_000


class CgroupUnavailable(RuntimeError):
    """No cgroup hierarchy this process can use to limit whole runs; the message says why in one line."""


@dataclass(frozen=True)
class _Mount:
    point: str
    root: str
    fstype: str
    options: frozenset[str]


def _mounts() -> list[_Mount]:
    mounts = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            fields, rest = left.split(), right.split()
            if len(fields) < 5 or len(rest) < 3:
                continue
            mounts.append(_Mount(fields[4], fields[3], rest[0], frozenset(rest[2].split(","))))
    return mounts


def _own_groups(source: str = "/proc/self/cgroup") -> dict[str, str]:
    """Controller (or "" for v2) -> this process's group path, from /proc/self/cgroup (or `source`)."""
    groups: dict[str, str] = {}
    with open(source) as f:
        for line in f:
            _, controllers, path = line.rstrip("\n").split(":", 2)
            if controllers == "":
                groups[""] = path
            for name in controllers.split(","):
                if name:
                    groups[name] = path
    return groups


def _on_disk(mount: _Mount, path: str) -> str | None:
    root = mount.root.rstrip("/")
    if root and not (path == root or path.startswith(root + "/")):
        return None  # our group is outside what this mount shows
    return os.path.join(mount.point, path[len(root):].lstrip("/"))


def _write(path: str, value: str) -> None:
    with open(path, "w") as f:
        f.write(value)


@dataclass
class CgroupTree:
    """The groups made for one executor pool: `spec(i)` is what slot i's executor needs."""

    version: int
    bases: dict[str, str]  # controller (v2: "unified") -> our base directory
    slots: int
    service_leaf: str | None = None  # v2: the leaf we moved the service into, moved back on remove
    own_group: str | None = None
    _removed: bool = field(default=False, repr=False)

    def slot_dir(self, controller: str, index: int) -> str:
        return os.path.join(self.bases[controller], f"slot-{index}")

    def spec(self, index: int) -> dict[str, Any]:
        if self.version == 2:
            return {"version": 2, "dir": self.slot_dir("unified", index)}
        dirs = {name: self.slot_dir(name, index) for name in self.bases}
        return {"version": 1, "dirs": dirs}

    def remove(self) -> None:
        """Delete every group we made (their processes must be dead; retried while they exit)."""
        if self._removed:
            return
        self._removed = True
        for base in self.bases.values():
            for index in range(self.slots):
                _rmdir_patiently(os.path.join(base, f"slot-{index}"))
            _rmdir_patiently(base)
        if self.service_leaf and self.own_group:
            with contextlib.suppress(OSError):
                _write(os.path.join(self.own_group, "cgroup.subtree_control"), " ".join(f"-{c}" for c in V2_REQUIRED))
                _write(os.path.join(self.own_group, "cgroup.procs"), str(os.getpid()))
            _rmdir_patiently(self.service_leaf)


def _rmdir_patiently(path: str, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            os.rmdir(path)
            return
        except FileNotFoundError:
            return
        except OSError as exc:
            if exc.errno != errno.EBUSY or time.monotonic() > deadline:
                return
            time.sleep(0.02)


def _remove_stale(parent: str) -> None:
    """Groups of ours left by a service that died (its pid is gone) and that are empty."""
    try:
        names = os.listdir(parent)
    except OSError:
        return
    for name in names:
        if not name.startswith(PREFIX):
            continue
        pid = name[len(PREFIX):].split("-", 1)[0]
        if not pid.isdigit() or os.path.exists(f"/proc/{pid}"):
            continue
        base = os.path.join(parent, name)
        with contextlib.suppress(OSError):
            for child in os.listdir(base):
                if os.path.isdir(os.path.join(base, child)):
                    os.rmdir(os.path.join(base, child))
            os.rmdir(base)


def _v2(mounts: list[_Mount], groups: dict[str, str], slots: int, cpus: float) -> CgroupTree:
    mount = next((m for m in mounts if m.fstype == "cgroup2"), None)
    if mount is None or "" not in groups:
        raise CgroupUnavailable("no cgroup v2 hierarchy is mounted")
    own = _on_disk(mount, groups[""])
    if own is None or not os.path.isdir(own):
        raise CgroupUnavailable(f"cgroup v2: this process's group {groups[''] !r} is not visible under {mount.point}")
    with open(os.path.join(own, "cgroup.controllers")) as f:
        available = set(f.read().split())
    missing = [c for c in V2_REQUIRED if c not in available]
    if missing:
        raise CgroupUnavailable(f"cgroup v2: controllers {', '.join(missing)} are not delegated to {own}")
    tree = CgroupTree(2, {}, slots, own_group=own)
    control = os.path.join(own, "cgroup.subtree_control")
    enable = " ".join(f"+{c}" for c in V2_REQUIRED)
    try:
        _write(control, enable)
    except OSError as exc:
        if exc.errno != errno.EBUSY:
            raise CgroupUnavailable(f"cgroup v2: cannot enable {enable} in {control}: {exc.strerror}") from None
        # "No internal processes": our group holds us; move this process into a leaf of its own.
        leaf = os.path.join(own, f"{PREFIX}{os.getpid()}-service")
        try:
            os.makedirs(leaf, exist_ok=True)
            _write(os.path.join(leaf, "cgroup.procs"), str(os.getpid()))
            tree.service_leaf = leaf
            _write(control, enable)
        except OSError as again:
            raise CgroupUnavailable(f"cgroup v2: cannot delegate {enable} below {own} ({again.strerror}); "
                                    "give the service a cgroup of its own with those controllers") from None
    _remove_stale(own)
    base = os.path.join(own, f"{PREFIX}{os.getpid()}-{secrets.token_hex(4)}")
    try:
        os.mkdir(base)
        tree.bases["unified"] = base
        _write(os.path.join(base, "cgroup.subtree_control"), enable)
        for index in range(slots):
            slot = tree.slot_dir("unified", index)
            os.mkdir(slot)
            _write(os.path.join(slot, "cpu.max"), f"{int(cpus * CPU_PERIOD_US)} {CPU_PERIOD_US}")
    except OSError as exc:
        tree.remove()
        raise CgroupUnavailable(f"cgroup v2: cannot create groups under {own}: {exc.strerror}") from None
    return tree


def _v1(mounts: list[_Mount], groups: dict[str, str], slots: int, cpus: float) -> CgroupTree:
    parents: dict[str, str] = {}
    for controller in (*V1_REQUIRED, "cpuacct"):
        mount = next((m for m in mounts if m.fstype == "cgroup" and controller in m.options), None)
        if mount is None or controller not in groups:
            if controller == "cpuacct":
                continue
            raise CgroupUnavailable(f"cgroup v1: the {controller} controller is not mounted")
        own = _on_disk(mount, groups[controller])
        if own is None or not os.path.isdir(own):
            raise CgroupUnavailable(f"cgroup v1: this process's {controller} group is not visible under {mount.point}")
        parents[controller] = own
    tree = CgroupTree(1, {}, slots)
    name = f"{PREFIX}{os.getpid()}-{secrets.token_hex(4)}"
    try:
        done: set[str] = set()
        for controller, own in parents.items():
            if own in done:  # co-mounted controllers (cpu,cpuacct) share one directory
                tree.bases[controller] = os.path.join(own, name)
                continue
            _remove_stale(own)
            base = os.path.join(own, name)
            os.mkdir(base)
            done.add(own)
            tree.bases[controller] = base
            for index in range(slots):
                os.mkdir(os.path.join(base, f"slot-{index}"))
        for index in range(slots):
            cpu = tree.slot_dir("cpu", index)
            _write(os.path.join(cpu, "cpu.cfs_period_us"), str(CPU_PERIOD_US))
            _write(os.path.join(cpu, "cpu.cfs_quota_us"), str(int(cpus * CPU_PERIOD_US)))
            memory = tree.slot_dir("memory", index)
            with contextlib.suppress(OSError):  # no swap in a run: where swap exists, swappiness 0 too
                _write(os.path.join(memory, "memory.swappiness"), "0")
    except OSError as exc:
        tree.remove()
        raise CgroupUnavailable(f"cgroup v1: cannot create groups ({exc.filename}: {exc.strerror}); the service needs root "
                                "or write access to its own memory, pids and cpu groups") from None
    return tree


def create_tree(slots: int, cpus_per_slot: float = 1.0) -> CgroupTree:
    """One group per slot under this process's own groups; v2 where usable, else v1.

    Where the engine mounts the cgroup filesystem read-only (every unprivileged container), the
    service mounts hierarchies of its own in a cgroup namespace of its own (`_mount_own_hierarchies`),
    which needs `CAP_SYS_ADMIN` and nothing more. Raises `CgroupUnavailable` (one line: what is
    missing) when nothing works.
    """
    try:
        mounts, groups = _mounts(), _own_groups()
    except OSError as exc:
        raise CgroupUnavailable(f"cannot read this process's cgroups: {exc}") from None
    reasons = []
    for attempt in (_v2, _v1):
        try:
            return attempt(mounts, groups, slots, cpus_per_slot)
        except CgroupUnavailable as exc:
            reasons.append(str(exc))
    try:
        mounts, groups = _mount_own_hierarchies(mounts)
    except OSError as exc:
        reasons.append(f"cannot mount a cgroup hierarchy of its own ({exc.strerror or exc}; a container needs CAP_SYS_ADMIN for that)")
    else:
        for attempt in (_v2, _v1):
            try:
                return attempt(mounts, groups, slots, cpus_per_slot)
            except CgroupUnavailable as exc:
                reasons.append(f"own mount: {exc}")
    raise CgroupUnavailable("no usable cgroup for whole-run limits: " + "; ".join(reasons))


_V1_CONTROLLERS = frozenset({"blkio", "cpu", "cpuacct", "cpuset", "devices", "freezer", "hugetlb", "memory", "misc",
                             "net_cls", "net_prio", "perf_event", "pids", "rdma"})


def _mount_own_hierarchies(mounts: list[_Mount]) -> tuple[list[_Mount], dict[str, str]]:
    """Mount fresh, writable cgroup hierarchies, rooted at this process's own group.

    Engines mount /sys/fs/cgroup read-only in unprivileged containers (a remount is refused even
    with CAP_SYS_ADMIN), but a process with CAP_SYS_ADMIN may mount the cgroup filesystem anew.
    Done after unsharing a cgroup namespace, the new mount shows only the group the service is in
    (the container's own) as its root, never the host's tree, whatever the engine's cgroupns mode.
    v1 hierarchies are mounted with the controller sets the host already uses (a v1 controller
    can only be mounted in its existing combination). Returns the mount table and groups as this
    thread now sees them (only the new mounts).
    """
    from rewardstack.sandbox import isolation

    wanted: list[tuple[str, str]] = []  # (fstype, controllers) to mount
    v1 = [m for m in mounts if m.fstype == "cgroup" and m.options & {*V1_REQUIRED, "cpuacct"}]
    for mount in v1:
        controllers = ",".join(sorted(mount.options & _V1_CONTROLLERS))
        if ("cgroup", controllers) not in wanted:
            wanted.append(("cgroup", controllers))
    if not wanted and any(m.fstype == "cgroup2" for m in mounts):
        wanted.append(("cgroup2", ""))
    if not wanted:
        raise OSError(errno.ENOENT, "no cgroup filesystem is mounted at all")
    isolation.unshare(isolation.CLONE_NEWCGROUP)
    base = tempfile.mkdtemp(prefix="rewardstack-cgroups-")
    for fstype, controllers in wanted:
        target = os.path.join(base, controllers.replace(",", "+") or "unified")
        os.mkdir(target)
        isolation.mount(fstype, target, fstype, isolation.MS_NOSUID | isolation.MS_NODEV | isolation.MS_NOEXEC, controllers or None)
    own = [m for m in _mounts() if m.point.startswith(base + os.sep)]  # only ours: the engine's stay read-only
    return own, _own_groups("/proc/thread-self/cgroup")

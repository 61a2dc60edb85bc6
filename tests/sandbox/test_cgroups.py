"""The runs' control groups: made under our own groups with unique names, removed, refused where unusable."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap

import pytest

from rewardstack.sandbox import cgroups
from rewardstack.sandbox.cgroups import CgroupUnavailable, create_tree
from tests.sandbox.helpers import HOST_UID_BASE


def test_tree_is_made_under_our_own_groups_and_removed() -> None:
    tree = create_tree(2)
    try:
        bases = set(tree.bases.values())
        for base in bases:
            assert os.path.basename(base).startswith(f"{cgroups.PREFIX}{os.getpid()}-")
            assert sorted(n for n in os.listdir(base) if n.startswith("slot-")) == ["slot-0", "slot-1"]
        if tree.version == 1:
            quota = open(os.path.join(tree.slot_dir("cpu", 0), "cpu.cfs_quota_us")).read().strip()
            assert quota == str(cgroups.CPU_PERIOD_US)  # one core per slot
            assert set(tree.spec(1)["dirs"]) >= {"memory", "pids", "cpu"}
        else:
            assert open(os.path.join(tree.slot_dir("unified", 0), "cpu.max")).read().split()[0] == str(cgroups.CPU_PERIOD_US)
    finally:
        tree.remove()
    assert not any(os.path.exists(base) for base in bases)


def test_v1_without_controllers_is_refused_with_the_reason() -> None:
    with pytest.raises(CgroupUnavailable, match="memory controller is not mounted"):
        cgroups._v1([], cgroups._own_groups(), 1, 1.0)


def test_v2_without_delegated_controllers_is_refused() -> None:
    mounts, groups = cgroups._mounts(), cgroups._own_groups()
    if not any(m.fstype == "cgroup2" for m in mounts):
        pytest.skip("no cgroup v2 mount here")
    try:
        tree = cgroups._v2(mounts, groups, 1, 1.0)
    except CgroupUnavailable as exc:
        assert "\n" not in str(exc) and "cgroup v2" in str(exc)
    else:  # a host whose v2 delegates the controllers: the tree is usable
        tree.remove()


@pytest.mark.skipif(shutil.which("unshare") is None, reason="needs util-linux unshare")
def test_sandbox_refuses_to_start_without_a_usable_cgroup() -> None:
    """In a mount namespace where /sys/fs/cgroup is gone, the sandbox does not start (one-line
    reason), rather than run code with per-process limits only."""
    script = textwrap.dedent(f"""
        import asyncio
        from rewardstack.sandbox.executors import ExecutorPool
        from rewardstack.sandbox.settings import SandboxSettings
        pool = ExecutorPool(SandboxSettings(slots=1, host_uid_base={HOST_UID_BASE}))
        try:
            asyncio.run(pool.start())
        except Exception as exc:
            print(type(exc).__name__ + ": " + str(exc))
        else:
            asyncio.run(pool.close())
            print("STARTED")
    """)
    shell = f"umount -l /sys/fs/cgroup 2>/dev/null; exec {sys.executable} -c '{script}'"
    done = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", shell],
                          capture_output=True, text=True, timeout=120, cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
    lines = done.stdout.strip().splitlines()
    assert lines and lines[-1].startswith("CgroupUnavailable: no usable cgroup for whole-run limits"), (done.stdout, done.stderr)
    assert "STARTED" not in done.stdout

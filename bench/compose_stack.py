"""Drive the compose.yaml stack with podman-compose: set up the engine, build, up, kill, recover, down.

Shared by the container test (`tests/deploy/test_containers.py`), the load and fault test
(`bench/load.py --fault`) and the scaling benchmark (`bench/scaling.py`). Every stack gets its own
compose project name and a free loopback port, so it never collides with a stack a person runs.

podman-compose 1.6 caveats handled here: `deploy.replicas` is honoured only with
`mode: replicated` (compose.yaml sets it; replica counts come from GATEWAY_REPLICAS /
SANDBOX_REPLICAS / MODELS_REPLICAS), `down` can leave scaled containers behind, so `down()`
removes every container, network and volume carrying the project's label as well, and a relative
seccomp path is resolved against the current folder, so the stack is given the profile's absolute
path (REWARDSTACK_SECCOMP_PROFILE, as docs/operations.md tells podman users) and podman-compose
runs from `workdir`, by default a folder other than the repository root.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
ENGINE_SETUP = ROOT.parent / "shared" / "tools" / "container-engine-setup"
LOCAL_WHEELS = Path("/opt/wheels")
SECCOMP_PROFILE = ROOT / "deploy" / "seccomp" / "sandbox.json"
SERVICES = ("lb", "sandbox-lb", "models-lb", "gateway", "sandbox", "models")  # long-running, `tokens` is one-shot
BASE_IMAGE = "docker.io/library/python:3.11-slim"  # what docker/Dockerfile builds FROM; built locally by ENGINE_SETUP
# What wait_ready scores until nothing comes back `error`: one item for the CPU scorers and the
# model server, one that makes the code scorer call a sandbox replica.
CANARY_ITEMS = [
    {"id": "canary-math", "completion": "<think>1 + 1 = 2</think>\n<answer>\\boxed{2}</answer>", "reference": "2"},
    {"id": "canary-code", "completion": "```python\ndef f():\n    return 1\n```", "reference": {"mode": "assert", "tests": ["assert f() == 1"]}},
]


class EngineUnavailable(RuntimeError):
    """No container engine can be set up here; the message says why."""


def setup_engine(timeout_s: float = 600) -> str:
    """Make podman + podman-compose usable (idempotent); returns the engine's version line.

    Uses ../shared/tools/container-engine-setup where it exists (it installs podman, picks a
    runtime that works on this kernel and builds the base image locally); otherwise podman and
    podman-compose must already be installed.
    """
    if ENGINE_SETUP.is_file() and os.geteuid() == 0:
        try:
            done = subprocess.run([str(ENGINE_SETUP)], capture_output=True, text=True, timeout=timeout_s)
        except subprocess.TimeoutExpired as exc:
            raise EngineUnavailable(f"{ENGINE_SETUP} did not finish within {timeout_s:.0f} s") from exc
        if done.returncode != 0:
            raise EngineUnavailable(f"{ENGINE_SETUP} failed (exit {done.returncode}): {done.stderr.strip()[-500:]}")
    for tool in ("podman", "podman-compose"):
        if shutil.which(tool) is None:
            raise EngineUnavailable(f"{tool} is not installed and {ENGINE_SETUP} could not install it "
                                    f"({'absent' if not ENGINE_SETUP.is_file() else 'needs root'})")
    # A container that really starts: `podman info` alone succeeds where namespaces are refused.
    probe = subprocess.run(["podman", "run", "--rm", "--network", "none", BASE_IMAGE, "true"],
                           capture_output=True, text=True, timeout=120)
    if probe.returncode != 0:
        raise EngineUnavailable(f"podman cannot run a container here: {probe.stderr.strip()[-500:]}")
    return subprocess.run(["podman", "--version"], capture_output=True, text=True, timeout=30).stdout.strip()


def build_images(roles: tuple[str, ...] = ("gateway", "sandbox", "models", "lb"), timeout_s: float = 1800) -> None:
    """docker/build.sh with podman; with this machine's wheel mirror when it has one."""
    command = [str(ROOT / "docker" / "build.sh")]
    if LOCAL_WHEELS.is_dir():
        command.append("--local-wheels")
    env = {**os.environ, "ENGINE": "podman", "ROLES": " ".join(roles), "CONTAINER_ENGINE_SETUP": str(ENGINE_SETUP)}
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout_s)
    if done.returncode != 0:
        raise RuntimeError(f"image build failed (exit {done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _podman(*args: str, timeout_s: float = 60, check: bool = True) -> str:
    done = subprocess.run(["podman", *args], capture_output=True, text=True, timeout=timeout_s)
    if check and done.returncode != 0:
        raise RuntimeError(f"podman {' '.join(args)}: {done.stderr.strip()[-1000:]}")
    return done.stdout


@dataclass
class ComposeStack:
    """One compose project of compose.yaml on a free 127.0.0.1 port."""

    project: str = "rewardstack-test"
    gateways: int = 2
    sandboxes: int = 2
    models: int = 2
    scorer_workers: int = 2
    port: int = field(default_factory=free_port)
    extra_env: dict[str, str] = field(default_factory=dict)
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="rewardstack-compose-")))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("REWARDSTACK_")}
        env.update({
            "REWARDSTACK_PORT": str(self.port),
            "GATEWAY_REPLICAS": str(self.gateways),
            "SANDBOX_REPLICAS": str(self.sandboxes),
            "MODELS_REPLICAS": str(self.models),
            "REWARDSTACK_SCORER_WORKERS": str(self.scorer_workers),
            "REWARDSTACK_SECCOMP_PROFILE": str(SECCOMP_PROFILE),
            **self.extra_env,
        })
        return env

    def compose_command(self) -> list[str]:
        """podman-compose for this project: `docker compose` in the README's commands becomes this."""
        return ["podman-compose", "-p", self.project, "-f", str(ROOT / "compose.yaml")]

    def run(self, command: list[str] | str, timeout_s: float = 300) -> subprocess.CompletedProcess[str]:
        """A command in `workdir` with this stack's environment (a string runs in a shell)."""
        return subprocess.run(command, cwd=self.workdir, env=self._env(), capture_output=True, text=True,
                              timeout=timeout_s, shell=isinstance(command, str))

    def _compose(self, *args: str, timeout_s: float = 300) -> subprocess.CompletedProcess[str]:
        return self.run([*self.compose_command(), *args], timeout_s=timeout_s)

    def up(self) -> None:
        self.down()  # a stack left by an interrupted run would hold the names
        done = self._compose("up", "-d", "--no-build")
        if done.returncode != 0:
            raise RuntimeError(f"podman-compose up failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")

    def down(self) -> None:
        """Remove the project's containers, networks and volumes (its service tokens too)."""
        self._compose("down", "-v", "-t", "3", timeout_s=180)
        label = f"label=com.docker.compose.project={self.project}"
        leftovers = _podman("ps", "-aq", "--filter", label).split()
        if leftovers:
            _podman("rm", "-f", "-t", "2", *leftovers, timeout_s=120, check=False)
        for network in _podman("network", "ls", "-q", "--filter", label, check=False).split():
            _podman("network", "rm", "-f", network, check=False)
        for volume in _podman("volume", "ls", "-q", "--filter", label, check=False).split():
            _podman("volume", "rm", "-f", volume, check=False)

    def containers(self, service: str) -> list[str]:
        """Names of the service's containers, replica 1 first."""
        out = _podman("ps", "-a", "--format", "json", "--filter", f"label=com.docker.compose.project={self.project}",
                      "--filter", f"label=com.docker.compose.service={service}")
        entries = json.loads(out or "[]")
        number = lambda e: int(e.get("Labels", {}).get("com.docker.compose.container-number", "0"))  # noqa: E731
        return [e["Names"][0] for e in sorted(entries, key=number)]

    def logs(self, tail: int = 40) -> str:
        lines = []
        for service in ("tokens", *SERVICES):
            for name in self.containers(service):
                out = subprocess.run(["podman", "logs", "--tail", str(tail), name], capture_output=True, text=True, timeout=30)
                lines.append(f"--- {name}\n{out.stdout}{out.stderr}")
        return "\n".join(lines)

    def wait_ready(self, scorers: tuple[str, ...], timeout_s: float = 240, api_token: str | None = None) -> None:
        """Wait until requests through the LB using every scorer named come back with no `error`,
        twice per gateway replica in a row, so that every replica has answered cleanly (not one).

        Listing the scorers is not enough: a gateway lists `helpfulness` before the model server
        behind it has loaded its models, and `code` before a sandbox replica is up; and a gateway
        whose breaker opened while the model servers loaded refuses for a few seconds more.
        """
        headers = {"Authorization": f"Bearer {api_token}"} if api_token else {}
        body = {"items": CANARY_ITEMS, "scorers": {name: {} for name in scorers}}
        deadline = time.monotonic() + timeout_s
        last = "no answer yet"
        clean_in_a_row = 0
        while time.monotonic() < deadline:
            try:
                response = httpx.post(f"{self.url}/v1/score", json=body, headers=headers, timeout=30)
                if response.status_code == 200:
                    errors = [f"{item['id']}/{name}: {c['detail'][:120]}" for item in response.json()["results"]
                              for name, c in item["components"].items() if c["status"] in ("error", "timeout")]
                    if not errors:
                        clean_in_a_row += 1
                        if clean_in_a_row >= 2 * max(1, self.gateways):
                            return
                        time.sleep(0.2)
                        continue
                    last = "; ".join(errors)
                else:
                    last = f"HTTP {response.status_code}: {response.text[:300]}"
            except httpx.HTTPError as exc:
                last = repr(exc)
            clean_in_a_row = 0
            time.sleep(1)
        raise TimeoutError(f"stack not ready after {timeout_s:.0f} s ({last})\n{self.logs()}")

    def restart_count(self, name: str) -> int:
        return int(_podman("inspect", "-f", "{{.RestartCount}}", name).strip() or 0)

    def kill(self, name: str) -> int:
        """SIGKILL the container's main process from the host, as a crash would; returns its restart count before.

        (`podman kill` would count as a stop by the user, and `unless-stopped` would not restart it.)
        """
        before = self.restart_count(name)
        pid = int(_podman("inspect", "-f", "{{.State.Pid}}", name).strip())
        if pid <= 0:
            raise RuntimeError(f"{name} is not running")
        os.kill(pid, signal.SIGKILL)
        return before

    def wait_recovered(self, name: str, restarts_before: int, port: int, timeout_s: float = 120) -> float:
        """Wait until the killed container was restarted and answers /readyz inside; returns seconds waited."""
        started = time.monotonic()
        probe = f"import urllib.request; urllib.request.urlopen('http://127.0.0.1:{port}/readyz', timeout=2)"
        while time.monotonic() - started < timeout_s:
            if self.restart_count(name) > restarts_before:
                done = subprocess.run(["podman", "exec", name, "python", "-c", probe], capture_output=True, timeout=30)
                if done.returncode == 0:
                    return time.monotonic() - started
            time.sleep(0.5)
        raise TimeoutError(f"{name} did not come back within {timeout_s:.0f} s\n{self.logs()}")

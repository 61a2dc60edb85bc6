"""`rewardstack serve` as a user runs it: a real process on a loopback port."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import httpx
import pytest

from tests.servers import free_port


def test_serve_starts_on_loopback_and_stops_cleanly() -> None:
    port = free_port()
    env = {**os.environ, "REWARDSTACK_SCORER_WORKERS": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "rewardstack.services.cli", "serve", "--port", str(port), "--log-level", "warning"], env=env
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            assert process.poll() is None, "the server exited"
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the server did not become ready"
            time.sleep(0.2)
        scorers = httpx.get(f"http://127.0.0.1:{port}/v1/scorers").json()["scorers"]
        assert isinstance(scorers, list)
    finally:
        process.terminate()
        # uvicorn shuts down gracefully, then re-raises SIGTERM so the exit status tells it
        assert process.wait(timeout=30) in (0, -signal.SIGTERM)


def rewardstack(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "rewardstack.services.cli", *args], capture_output=True, text=True, timeout=timeout, check=False)


def test_version() -> None:
    from rewardstack import __version__

    for flag in ("--version", "-V"):
        result = rewardstack(flag)
        assert (result.returncode, result.stdout.strip(), result.stderr) == (0, f"rewardstack {__version__}", "")


def test_help_goes_to_stdout() -> None:
    result = rewardstack("--help")
    assert result.returncode == 0 and result.stderr == ""
    assert "rewardstack select" in result.stdout and "usage: rewardstack {serve,sandbox,models,score,select,train}" in result.stdout


@pytest.mark.parametrize("command", ["serve", "sandbox", "models", "score", "select", "train"])
def test_each_subcommand_help_goes_to_stdout(command: str) -> None:
    result = rewardstack(command, "--help")
    assert result.returncode == 0 and result.stderr == ""
    assert result.stdout.startswith(f"usage: rewardstack {command}")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(["frobnicate"], "rewardstack: error: unknown command 'frobnicate'; choose from serve,", id="unknown-command"),
        pytest.param(["scroe"], "unknown command 'scroe'; did you mean 'score'?", id="typo-suggests"),
        pytest.param([], "rewardstack: error: no command given", id="nothing"),
        pytest.param(["serve", "--prot", "1"], "rewardstack serve: error: unrecognized arguments: --prot 1", id="serve-flag"),
        pytest.param(["sandbox", "--bogus"], "rewardstack sandbox: error: unrecognized arguments: --bogus", id="sandbox-flag"),
        pytest.param(["models", "--bogus"], "rewardstack models: error: unrecognized arguments: --bogus", id="models-flag"),
        pytest.param(["score", "x.jsonl", "--url", "http://a", "--scorers", "m", "--bogus"], "unrecognized arguments: --bogus", id="score-flag"),
        pytest.param(["select", "x.jsonl", "--scorers", "m", "--tie-break", "longest"], "argument --tie-break: invalid choice", id="select-choice"),
        pytest.param(["train"], "rewardstack train: error: the following arguments are required: --config", id="train-missing"),
        pytest.param(["serve", "--enabled-scorers", "math,mth"], "no scorer 'mth'; known: math, format,", id="unknown-enabled-scorer"),
        pytest.param(["serve", "--enabled-scorers", "math:1"], "takes scorer names", id="enabled-scorers-with-weights"),
    ],
)
def test_mistakes_exit_2_with_one_line(args: list[str], message: str) -> None:
    result = rewardstack(*args)
    assert result.returncode == 2
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr  # no usage dump, no traceback
    assert result.stdout == ""

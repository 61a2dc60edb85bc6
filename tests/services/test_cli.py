"""`rewardstack serve` as a user runs it: a real process on a loopback port."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import httpx

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


def test_unknown_subcommand_prints_usage() -> None:
    result = subprocess.run([sys.executable, "-m", "rewardstack.services.cli", "frobnicate"], capture_output=True, text=True)
    assert result.returncode == 2
    assert "usage: rewardstack" in result.stderr

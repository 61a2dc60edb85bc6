"""docker/stack_tokens.py, the compose stack's service tokens: made once, read at start, overridable."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "docker" / "stack_tokens.py"
SHOW = ["sh", "-c", 'printf "%s|%s" "$REWARDSTACK_SANDBOX_API_TOKEN" "$REWARDSTACK_MODELS_API_TOKEN"']


def _make(*folders: Path) -> None:
    """`make` writes, then idles until SIGTERM, from which it exits 0."""
    process = subprocess.Popen([sys.executable, str(SCRIPT), "make", *map(str, folders)], stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    while (line := process.stdout.readline()) != "tokens ready\n":  # "made <path>" lines first
        assert line, "stack_tokens.py make ended before it was ready"
    assert all((f / "token").is_file() for f in folders)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0


def _exec(env: dict[str, str]) -> str:
    done = subprocess.run([sys.executable, str(SCRIPT), "exec", "--", *SHOW], env={**os.environ, **env},
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_tokens_are_random_readable_by_other_uids_and_made_once(tmp_path: Path) -> None:
    sandbox, models = tmp_path / "sandbox", tmp_path / "models"
    _make(sandbox, models)
    first = (sandbox / "token").read_text(), (models / "token").read_text()
    assert first[0] != first[1] and all(len(t) == 48 and int(t, 16) >= 0 for t in first)
    assert (sandbox / "token").stat().st_mode & 0o777 == 0o444
    _make(sandbox, models)  # the second `up`
    assert ((sandbox / "token").read_text(), (models / "token").read_text()) == first


def test_exec_exports_the_tokens_and_the_environment_wins(tmp_path: Path) -> None:
    _make(tmp_path / "s", tmp_path / "m")
    files = {"REWARDSTACK_SANDBOX_API_TOKEN_FILE": str(tmp_path / "s" / "token"),
             "REWARDSTACK_MODELS_API_TOKEN_FILE": str(tmp_path / "m" / "token")}
    sandbox, models = (tmp_path / "s" / "token").read_text(), (tmp_path / "m" / "token").read_text()
    assert _exec({**files, "REWARDSTACK_SANDBOX_API_TOKEN": "", "REWARDSTACK_MODELS_API_TOKEN": ""}) == f"{sandbox}|{models}"
    assert _exec({**files, "REWARDSTACK_SANDBOX_API_TOKEN": "set-by-the-operator", "REWARDSTACK_MODELS_API_TOKEN": ""}) == f"set-by-the-operator|{models}"


def test_exec_waits_for_a_token_made_after_it_starts(tmp_path: Path) -> None:
    folder = tmp_path / "late"
    maker = threading.Timer(1.0, _make, args=(folder,))
    maker.start()
    try:
        out = _exec({"REWARDSTACK_SANDBOX_API_TOKEN_FILE": str(folder / "token"), "REWARDSTACK_SANDBOX_API_TOKEN": "",
                     "REWARDSTACK_MODELS_API_TOKEN": ""})
    finally:
        maker.join()
    assert out == f"{(folder / 'token').read_text()}|"

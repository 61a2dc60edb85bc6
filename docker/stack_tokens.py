"""The compose stack's service tokens: made once by the `tokens` service, read by every service at start.

    python stack_tokens.py make DIR...        write DIR/token (48 random hex characters) where absent,
                                              then stay up until SIGTERM
    python stack_tokens.py exec -- CMD...     export each REWARDSTACK_*_API_TOKEN from the file named by
                                              its *_FILE variable (waiting for it), then exec CMD

Why a file in a named volume rather than an environment variable: `docker compose up` on a fresh
clone must never start the sandbox or the model server without a token, and no one should have to
invent one first. The volume outlives `down` (not `down -v`), so the token is made once. A token
set in the caller's environment wins over the file (compose passes it through).
`make` stays up after writing instead of exiting: `docker compose up --wait` counts an exited
container as a failure unless another service `depends_on` it as completed, and podman does not
restart a container whose dependency is not running, so a one-shot service would break one of them.
Runs with the image's own Python and nothing else: no package import, no network.
"""

from __future__ import annotations

import os
import secrets
import signal
import sys
import time
from pathlib import Path

TOKENS = ("REWARDSTACK_SANDBOX_API_TOKEN", "REWARDSTACK_MODELS_API_TOKEN")
WAIT_S = 120.0  # the `tokens` service runs first; this only covers engines that start in parallel


def make(folders: list[str]) -> None:
    """Write a fresh token into each folder that has none; keep existing ones (made once). Returns at once."""
    for folder in map(Path, folders):
        folder.mkdir(parents=True, exist_ok=True)
        token = folder / "token"
        if token.is_file() and token.stat().st_size > 0:
            continue
        partial = folder / ".token.partial"
        partial.write_text(secrets.token_hex(24))
        partial.chmod(0o444)  # read by services that run as another uid (gateway, models: 10001)
        partial.replace(token)  # atomic: a reader never sees half a token
        print(f"made {token}", flush=True)


def _read(path: Path, deadline: float) -> str:
    while time.monotonic() < deadline:
        if path.is_file() and (value := path.read_text().strip()):
            return value
        time.sleep(0.2)
    raise SystemExit(f"stack_tokens: no token in {path} after {WAIT_S:.0f} s (did the `tokens` service run?)")


def exec_with_tokens(command: list[str]) -> None:
    deadline = time.monotonic() + WAIT_S
    for name in TOKENS:
        file = os.environ.get(f"{name}_FILE")
        if file and not os.environ.get(name):
            os.environ[name] = _read(Path(file), deadline)
    os.execvp(command[0], command)


def main(argv: list[str]) -> None:
    if len(argv) >= 2 and argv[0] == "make":
        stop = {signal.SIGTERM, signal.SIGINT}
        signal.pthread_sigmask(signal.SIG_BLOCK, stop)  # delivered to sigwait rather than killing PID 1 ...
        make(argv[1:])
        print("tokens ready", flush=True)
        signal.sigwait(stop)  # ... which ignores SIGTERM without a handler: `down` would wait it out
    elif len(argv) >= 3 and argv[0] == "exec" and argv[1] == "--":
        exec_with_tokens(argv[2:])
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])

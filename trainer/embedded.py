"""The embedded default stack for one command: a gateway on a free loopback port, in this process.

`rewardstack select` without `--url` (and `rewardstack.select(...)` without a client) score through
it, so curating a file needs no server started by hand. It serves only the scorers asked for, so
a math-and-readability run does not start the sandbox or load the neural models. Needs the
`server` extra.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

__all__ = ["embedded_gateway"]

STARTUP_TIMEOUT_S = 300.0  # the neural models, when asked for, load on CPU at start-up


@contextmanager
def embedded_gateway(scorers: Iterable[str], *, workers: int | None = None) -> Iterator[str]:
    """Serve `scorers` on 127.0.0.1:<free port> while the block runs; yields the base URL.

    Raises ValueError naming an unknown scorer, ImportError (with the extra to install) without
    the server extra, RuntimeError when the gateway fails to start.
    """
    try:
        import uvicorn

        from rewardstack.services.gateway.app import create_app
        from rewardstack.services.scorers.builtin import SERVICE_SCORER_NAMES, builtin_cpu_scorers
        from rewardstack.services.settings import Settings
    except ImportError as exc:
        raise ImportError(
            f"the embedded stack needs the server extra ({exc}): pip install 'rewardstack[server]', or give --url"
        ) from exc
    names = list(dict.fromkeys(scorers))
    known = [s.name for s in builtin_cpu_scorers()] + list(SERVICE_SCORER_NAMES)
    if unknown := [n for n in names if n not in known]:
        raise ValueError(f"scorers: no scorer {', '.join(map(repr, unknown))} in the embedded stack; known: {', '.join(known)}")
    overrides: dict[str, object] = {"host": "127.0.0.1", "port": 0, "enabled_scorers": ",".join(names)}
    if workers is not None:
        overrides["scorer_workers"] = workers
    app = create_app(Settings(**overrides))
    sock = socket.create_server(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True, name="rewardstack-embedded")
    thread.start()
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while not server.started:
            if not thread.is_alive():
                raise RuntimeError("the embedded gateway exited during start-up (see the log above)")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the embedded gateway did not start within {STARTUP_TIMEOUT_S:.0f} s")
            time.sleep(0.02)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=60)
        sock.close()

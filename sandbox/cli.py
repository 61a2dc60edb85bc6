"""`rewardstack sandbox`: serve the sandbox API with uvicorn."""

from __future__ import annotations

import sys

from pydantic import ValidationError

from rewardstack.sandbox.settings import SandboxSettings
from rewardstack.services.cli import CliParser, settings_problems


def main(argv: list[str]) -> int:
    parser = CliParser(prog="rewardstack sandbox", description="Serve the code sandbox (POST /v1/run, /v1/judge).")
    parser.add_argument("--host", default=None, help="bind address (default 127.0.0.1; REWARDSTACK_SANDBOX_HOST)")
    parser.add_argument("--port", type=int, default=None, help="port (default 8100; REWARDSTACK_SANDBOX_PORT)")
    parser.add_argument("--slots", type=int, default=None, help="concurrent executions (default: the core count)")
    parser.add_argument("--log-level", default="info")
    args = parser.parse_args(argv)
    overrides = {k: v for k, v in {"host": args.host, "port": args.port, "slots": args.slots}.items() if v is not None}
    try:
        settings = SandboxSettings(**overrides)
    except ValidationError as exc:
        print(f"rewardstack sandbox: {settings_problems(exc)}", file=sys.stderr)
        return 2

    import uvicorn

    from rewardstack.sandbox.app import create_sandbox_app

    uvicorn.run(create_sandbox_app(settings), host=settings.host, port=settings.port, log_level=args.log_level)
    return 0

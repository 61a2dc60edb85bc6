"""`rewardstack models`: serve the neural reward models over HTTP.

    rewardstack models [--host 127.0.0.1] [--port 8200] [--config models.json]

Without `--config` it serves the embedded CPU default (helpfulness and safety heads over MiniLM).
Exit status: 2 for a bad configuration, 1 when the models fail to load.
Set `REWARDSTACK_MODELS_API_TOKEN` to require a bearer token on /v1 when binding beyond loopback.
"""

from __future__ import annotations

import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    from rewardstack.services.cli import CliParser

    parser = CliParser(prog="rewardstack models", description="Serve the neural reward models.")
    parser.add_argument("--host", help="bind address (default 127.0.0.1; env REWARDSTACK_MODELS_HOST)")
    parser.add_argument("--port", type=int, help="port (default 8200; env REWARDSTACK_MODELS_PORT)")
    parser.add_argument("--config", type=Path, help="models file, JSON (default: the embedded CPU models; env REWARDSTACK_MODELS_CONFIG)")
    parser.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    args = parser.parse_args(argv)

    from pydantic import ValidationError

    from rewardstack.services.model_server.config import ModelServerSettings, force_offline

    force_offline()
    overrides = {k: v for k, v in vars(args).items() if k != "log_level" and v is not None}
    try:
        settings = ModelServerSettings(**overrides)
        specs = settings.models()
    except (ValidationError, ValueError) as exc:
        print(f"rewardstack models: {exc}", file=sys.stderr)
        return 2

    import uvicorn

    from rewardstack.services.model_server.app import create_model_app

    # Models load after the server starts (probes answer meanwhile); a failed load stops it with status 1.
    # The callback runs once serving has begun, when `server` is bound.
    app = create_model_app(settings, specs=specs, on_load_failure=lambda: setattr(server, "should_exit", True))
    server = uvicorn.Server(uvicorn.Config(app, host=settings.host, port=settings.port, log_level=args.log_level))
    server.run()
    if app.state.load.error is not None:
        print(f"rewardstack models: {app.state.load.error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

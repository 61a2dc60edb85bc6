"""The `rewardstack` command. Each subcommand's implementation is imported only when it runs,
so the client-only install (`pip install rewardstack`) can still run `rewardstack score`.

    rewardstack serve    the gateway (REST API, every scorer; embedded sandbox and models by default)
    rewardstack sandbox  the code-execution sandbox service
    rewardstack models   the neural model server
    rewardstack score    score a JSONL file through a running stack
    rewardstack select   keep the sampled completions that pass a rule, as SFT data (R1's rejection sampling)
    rewardstack train    GRPO training against the stack

`rewardstack COMMAND --help` describes each; `rewardstack --version` prints the version.
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn

# subcommand -> (module, function taking argv and returning an exit code, one-line help)
DELEGATED: dict[str, tuple[str, str, str]] = {
    "sandbox": ("rewardstack.sandbox.cli", "main", "serve the code-execution sandbox"),
    "models": ("rewardstack.services.model_server.cli", "main", "serve the neural reward models"),
    "score": ("rewardstack.cli", "score_main", "score a JSONL file of items through a running stack"),
    "select": ("rewardstack.cli", "select_main", "keep the sampled completions that pass a rule, as SFT data"),
    "train": ("rewardstack.cli", "train_main", "run GRPO training against the stack"),
}


class CliParser(argparse.ArgumentParser):
    """argparse as people expect it: `--help` on stdout (argparse's own), and a mistake (unknown
    flag, missing value) as one line on stderr with exit status 2, not a usage dump."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _serve(argv: Sequence[str]) -> int:
    parser = CliParser(prog="rewardstack serve", description="Serve the reward gateway.")
    parser.add_argument("--host", help="bind address (default 127.0.0.1; env REWARDSTACK_HOST)")
    parser.add_argument("--port", type=int, help="port (default 8000; env REWARDSTACK_PORT)")
    parser.add_argument("--workers", type=int, dest="scorer_workers", help="scorer worker processes (default: one per core)")
    parser.add_argument("--task-deadline-s", type=float, help="per-item scorer deadline in seconds (default 10)")
    parser.add_argument("--sandbox-url", help="sandbox service URL(s), comma-separated (default: embedded sandbox)")
    parser.add_argument("--models-url", help="model server URL (default: embedded CPU models)")
    parser.add_argument("--judge-url", help="judge server URL(s) (OpenAI-compatible, e.g. vllm serve), comma-separated (default: no judge)")
    parser.add_argument("--judge-model", help="model name the judge server serves (env REWARDSTACK_JUDGE_MODEL)")
    parser.add_argument("--enabled-scorers", help="comma-separated scorers to serve (default: all)")
    parser.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    args = parser.parse_args(argv)

    import uvicorn
    from pydantic import ValidationError

    from rewardstack.services.gateway.app import create_app
    from rewardstack.services.settings import Settings

    overrides = {k: v for k, v in vars(args).items() if k != "log_level" and v is not None}
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        print(f"rewardstack serve: {settings_problems(exc)}", file=sys.stderr)
        return 2
    if problem := _unknown_enabled_scorers(settings):
        print(f"rewardstack serve: {problem}", file=sys.stderr)
        return 2
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level=args.log_level)
    return 0


def _unknown_enabled_scorers(settings: object) -> str | None:
    """Checked before the server starts, so a typo is one line here, not a traceback from the lifespan."""
    from rewardstack.services.scorers.builtin import SERVICE_SCORER_NAMES, builtin_cpu_scorers

    names = getattr(settings, "enabled_scorer_names", None) or frozenset()
    known = [s.name for s in builtin_cpu_scorers()] + list(SERVICE_SCORER_NAMES)
    unknown = sorted(names - set(known))
    if not unknown:
        return None
    return f"--enabled-scorers (REWARDSTACK_ENABLED_SCORERS): no scorer {', '.join(map(repr, unknown))}; known: {', '.join(known)}"


def settings_problems(exc: Exception) -> str:
    """A pydantic ValidationError of a settings class as one line per field, without the traceback."""
    errors = getattr(exc, "errors", None)
    if not callable(errors):
        return str(exc)
    return "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'settings'}: {e['msg']}" for e in errors())


def _delegate(name: str) -> Callable[[Sequence[str]], int]:
    module_name, function, _ = DELEGATED[name]

    def run(argv: Sequence[str]) -> int:
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            print(f"rewardstack {name}: missing dependency ({exc}); install the extra it needs, "
                  "e.g. pip install 'rewardstack[all]'", file=sys.stderr)
            return 2
        return getattr(module, function)(list(argv))

    return run


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("rewardstack")
    except PackageNotFoundError:  # run from a source tree that is not installed
        from rewardstack import __version__

        return __version__


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    commands: dict[str, Callable[[Sequence[str]], int]] = {"serve": _serve}
    commands.update({name: _delegate(name) for name in DELEGATED})
    usage = "usage: rewardstack {" + ",".join(commands) + "} ... | --help | --version"
    if argv and argv[0] in ("-h", "--help"):
        print(__doc__.strip().split("\n\n", 1)[1] if __doc__ else "")
        print(f"\n{usage}")
        return 0
    if argv and argv[0] in ("-V", "--version"):
        print(f"rewardstack {_version()}")
        return 0
    if not argv or argv[0] not in commands:
        given = f"unknown command {argv[0]!r}" if argv else "no command given"
        near = difflib.get_close_matches(argv[0], commands, n=1) if argv else []
        hint = f"; did you mean {near[0]!r}?" if near else f"; choose from {', '.join(commands)}"
        print(f"rewardstack: error: {given}{hint} (see rewardstack --help)", file=sys.stderr)
        return 2
    return commands[argv[0]](argv[1:])


if __name__ == "__main__":
    raise SystemExit(main())

"""`rewardstack score`, `rewardstack select` and `rewardstack train`: argument parsing and exit codes only.

`score` runs with the base install; `select` too when given `--url` (without one it starts the
embedded stack, which needs the server extra); `train` imports torch/TRL only when it runs.
Exit codes: 0 done; 1 the service failed (retries spent; `score` and `select` can be re-run to
resume); 2 bad input or configuration, always as one line on stderr.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from rewardstack.client import normalize_scorers
from rewardstack.errors import RequestRejected, RewardstackError, ServiceUnreachable
from rewardstack.services.cli import CliParser
from rewardstack.services.contract import ScorerRequest

__all__ = ["score_main", "select_main", "train_main"]


def _urls(values: Sequence[str]) -> list[str]:
    return [u.strip() for value in values for u in value.split(",") if u.strip()]


def _scorers(spec: str, params: Sequence[str]) -> dict[str, ScorerRequest]:
    """`--scorers math:1,readability` with `--param readability='{"language": "en"}'` to the wire form."""
    scorers = normalize_scorers(spec)
    for entry in params:
        name, sep, raw = entry.partition("=")
        if not sep or name.strip() not in scorers:
            raise ValueError(f"--param {entry!r}: expected SCORER=JSON for one of the --scorers ({', '.join(scorers)})")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ValueError(f"--param {name}: not JSON ({exc.msg}); e.g. --param {name}='{{\"language\": \"en\"}}'") from None
        if not isinstance(value, dict):
            raise ValueError(f"--param {name}: a JSON object of the scorer's params, e.g. '{{\"language\": \"en\"}}'")
        scorers[name.strip()] = ScorerRequest(weight=scorers[name.strip()].weight, params=value)
    return scorers


def _add_service_flags(parser: CliParser, *, url_required: bool) -> None:
    url_help = "service URL; repeat or comma-separate for replicas" + ("" if url_required else " (default: start the embedded stack)")
    parser.add_argument("--url", action="append", required=url_required, default=[], help=url_help)
    parser.add_argument("--scorers", required=True, help="e.g. math,format or math:1,format:0.2")
    parser.add_argument("--param", action="append", default=[], metavar="SCORER=JSON",
                        help="a scorer's params, e.g. --param readability='{\"language\": \"en\"}'; repeatable")
    parser.add_argument("--deadline-s", type=float, help="time budget per batch; items not finished come back as timeout")
    parser.add_argument("--api-token", help="bearer token, when the service requires one")
    parser.add_argument("--rescore", action="store_true", help="score everything again instead of resuming from the output")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


@contextmanager
def _client(urls: list[str], api_token: str | None, scorers: dict[str, ScorerRequest]) -> Iterator[Any]:
    """A checked client on `urls`, or on the embedded stack when there are none."""
    from rewardstack.client import RewardClient

    with ExitStack() as stack:
        if not urls:
            from rewardstack.embedded import embedded_gateway

            urls = [stack.enter_context(embedded_gateway(scorers))]
        client = stack.enter_context(RewardClient(urls, api_token=api_token))
        client.check(list(scorers))
        yield client


def _run(command: str, out: Path, work: Callable[[], str]) -> int:
    """Run `work` and map what can go wrong to one line on stderr and an exit code."""
    from rewardstack.score_file import InputError

    try:
        print(work())
    except (InputError, ValueError, OSError, ImportError) as exc:
        print(f"rewardstack {command}: {exc}", file=sys.stderr)
        return 2
    except RequestRejected as exc:
        print(f"rewardstack {command}: the service refused the request: {exc}", file=sys.stderr)
        return 2
    except (ServiceUnreachable, RuntimeError) as exc:  # RuntimeError: the embedded stack failed to start
        print(f"rewardstack {command}: {_one_line(exc)}", file=sys.stderr)
        return 1
    except RewardstackError as exc:
        print(f"rewardstack {command}: {exc}; results so far are in {out}: run the same command again to resume", file=sys.stderr)
        return 1
    return 0


def score_main(argv: Sequence[str]) -> int:
    parser = CliParser(
        prog="rewardstack score",
        description="Score a JSONL file of items ({completion, reference|answer|solution|tests, prompt, id}) "
        "through a running stack; writes one result per line, resumable.",
    )
    parser.add_argument("file", type=Path, help="input JSONL")
    parser.add_argument("--out", type=Path, help="output JSONL (default: FILE with .scored.jsonl); resumed when it exists")
    parser.add_argument("--batch-size", type=int, default=256, help="items per request batch written at once (default 256)")
    _add_service_flags(parser, url_required=True)
    args = parser.parse_args(argv)
    if args.batch_size < 1:
        parser.error("--batch-size must be at least 1")
    out = args.out or args.file.with_suffix(".scored.jsonl")

    def work() -> str:
        from rewardstack.score_file import score_file

        scorers = _scorers(args.scorers, args.param)
        with _client(_urls(args.url), args.api_token, scorers) as client:
            summary = score_file(
                args.file, out, client, scorers,
                batch_size=args.batch_size, deadline_s=args.deadline_s, progress=not args.quiet, rescore=args.rescore,
            )
        return f"scored {summary.line()}; results in {out}"

    return _run("score", out, work)


def select_main(argv: Sequence[str]) -> int:
    parser = CliParser(
        prog="rewardstack select",
        description="R1's rejection sampling: score sampled completions and keep those that pass a rule, as SFT JSONL "
        "(chat `messages`). Resumable; also writes OUT.report.json and OUT.prompts.jsonl.",
    )
    parser.add_argument("file", type=Path, help="input JSONL: one completion per line (with prompt or group_id), "
                        "one prompt per line with `completions`, or chat `messages`")
    parser.add_argument("--out", type=Path, help="SFT JSONL (default: FILE with .sft.jsonl)")
    parser.add_argument("--keep-if", help="rule over component values and statuses, e.g. "
                        "'math == 1 and readability == 1 and language >= 0.95' (default: keep every ok item)")
    parser.add_argument("--per-prompt", type=int, metavar="K", help="keep at most K per prompt, best reward first")
    parser.add_argument("--tie-break", choices=["shortest", "seed"], default="shortest",
                        help="among equal rewards: the shortest completion first (default), or a seeded shuffle")
    parser.add_argument("--seed", type=int, default=0, help="seed of --tie-break seed (default 0)")
    parser.add_argument("--pass-rate", metavar="LOW..HIGH", help="keep only prompts whose pass rate lies in the band, e.g. 0.1..0.9")
    parser.add_argument("--keep-not-ok", action="store_true",
                        help="let items with a component that is not ok reach --keep-if (as None, with SCORER.status)")
    parser.add_argument("--batch-size", type=int, default=1024, help="completions per scoring batch (default 1024)")
    _add_service_flags(parser, url_required=False)
    args = parser.parse_args(argv)
    if args.batch_size < 1:
        parser.error("--batch-size must be at least 1")
    out = args.out or args.file.with_suffix(".sft.jsonl")

    def work() -> str:
        from rewardstack.selection import select_file, selection_policy

        scorers = _scorers(args.scorers, args.param)
        policy = selection_policy(scorers, args.keep_if, args.per_prompt, args.pass_rate, args.tie_break, args.seed, args.keep_not_ok)
        with _client(_urls(args.url), args.api_token, scorers) as client:
            report = select_file(
                args.file, out, scorers, policy, client=client,
                batch_size=args.batch_size, deadline_s=args.deadline_s, rescore=args.rescore, progress=not args.quiet,
            )
        return f"{report.line()}; SFT data in {out}"

    return _run("select", out, work)


def train_main(argv: Sequence[str]) -> int:
    parser = CliParser(prog="rewardstack train", description="GRPO training (TRL) against the reward stack.")
    parser.add_argument("--config", type=Path, required=True, help="recipe YAML, e.g. recipes/tiny_cpu.yaml")
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE",
        help="override a recipe value, dotted path, YAML value (e.g. --set training.max_steps=2); repeatable",
    )
    args = parser.parse_args(argv)

    try:
        from rewardstack import grpo
    except ImportError as exc:
        print(f"rewardstack train: missing dependency ({exc}); pip install 'rewardstack[train]'", file=sys.stderr)
        return 2
    import yaml

    try:
        recipe = grpo.load_recipe(args.config, args.set)
    except (OSError, ValueError, yaml.YAMLError) as exc:
        print(f"rewardstack train: {_one_line(exc)}", file=sys.stderr)
        return 2
    try:
        grpo.train(recipe)
    except (ServiceUnreachable, RequestRejected, grpo.RecipeError) as exc:
        print(f"rewardstack train: {_one_line(exc)}", file=sys.stderr)
        return 2
    except RewardstackError as exc:
        print(f"rewardstack train: the reward service failed: {exc}", file=sys.stderr)
        return 1
    return 0


def _one_line(exc: BaseException) -> str:
    """A configuration error as one line: pydantic's per-field errors joined, naming each key."""
    errors = getattr(exc, "errors", None)
    if not callable(errors):
        return " ".join(str(exc).split())
    parts = []
    for error in errors():
        key = ".".join(str(p) for p in error["loc"]) or "recipe"
        message = error["msg"]
        if error["type"] == "extra_forbidden":
            allowed = _allowed_keys(error["loc"][:-1])
            message = f"unknown key; allowed: {', '.join(allowed)}" if allowed else "unknown key"
        parts.append(f"{key}: {message}")
    return "; ".join(parts)


def _allowed_keys(loc: Sequence[Any]) -> list[str]:
    """The field names of the recipe section at `loc` (the recipe itself for an empty loc)."""
    from rewardstack.grpo import Recipe

    model: Any = Recipe
    for part in loc:
        field = getattr(model, "model_fields", {}).get(part)
        model = getattr(field, "annotation", None) if field else None
    fields = getattr(model, "model_fields", None)
    return [name for name, f in fields.items() if not f.exclude] if fields else []

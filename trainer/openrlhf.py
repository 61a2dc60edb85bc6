"""OpenRLHF's reward-function-file mode, backed by the reward stack.

OpenRLHF takes rewards two ways; both end at the same scorers:

- HTTP: `--reward.remote_url http://127.0.0.1:8000/get_reward?scorers=math:1,format:0.2` (named
  `--remote_rm_url` before 0.10.2) posts to the gateway's `/get_reward`; nothing to import here.
- A Python file: the same flag naming `/path/to/file.py` loads the file's `reward_func(queries, prompts,
  labels)` (OpenRLHF >= 0.6; from 0.9.1 `SingleTurnAgentExecutor` calls it one sample at a time in a
  thread, 0.6-0.9.0 call it on micro-batches in Ray tasks). This module is such a file:

      --reward.remote_url $(python -c "import rewardstack.openrlhf as m; print(m.__file__)")

  configured by environment variables, since OpenRLHF passes no options: `REWARDSTACK_URL`
  (comma-separated for several replicas), `REWARDSTACK_SCORERS` (default `math`),
  `REWARDSTACK_FALLBACK` (a number for items that are not `ok`; unset: such an item raises, as
  OpenRLHF cannot leave a sample out) and `REWARDSTACK_SPECIAL_TOKENS` (extra tokens to strip).

The response is cut out of each decoded query by the same `locate_response` the gateway uses,
so both ways give the same reward for the same sample.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Any

from rewardstack.client import normalize_scorers, shared_client
from rewardstack.errors import ItemNotScored
from rewardstack.services.contract import ScoreItem, Status
from rewardstack.services.decoded_text import NotLocated, locate_response

__all__ = ["reward_func"]

DEFAULT_SCORERS = "math"


def _settings() -> tuple[tuple[str, ...], str, float | None, tuple[str, ...]]:
    url = os.environ.get("REWARDSTACK_URL", "")
    urls = tuple(u.strip() for u in url.split(",") if u.strip())
    if not urls:
        raise ValueError("rewardstack.openrlhf: set REWARDSTACK_URL to the reward service, e.g. http://127.0.0.1:8000")
    fallback = os.environ.get("REWARDSTACK_FALLBACK")
    try:
        value = None if fallback in (None, "") else float(fallback)
    except ValueError:
        raise ValueError(f"REWARDSTACK_FALLBACK must be a number, not {fallback!r}") from None
    if value is not None and not math.isfinite(value):
        raise ValueError(f"REWARDSTACK_FALLBACK must be a finite number, not {fallback!r}")
    special = tuple(t for t in os.environ.get("REWARDSTACK_SPECIAL_TOKENS", "").split(",") if t)
    return urls, os.environ.get("REWARDSTACK_SCORERS", DEFAULT_SCORERS), value, special


def _as_tensor(values: list[float]) -> Any:
    """A float tensor when torch is there (OpenRLHF always has it), else the list."""
    try:
        import torch
    except ImportError:
        return values
    return torch.tensor(values, dtype=torch.float32)


def reward_func(queries: Sequence[str], prompts: Sequence[str] | None, labels: Sequence[Any] | None, **_: Any) -> dict[str, Any]:
    """OpenRLHF's reward hook: `rewards`, `scores` (the same) and `extra_logs` (each scorer's component).

    Raises `ItemNotScored` for a sample that is not `ok` unless `REWARDSTACK_FALLBACK` is set; an
    `error` (our infrastructure) raises either way.
    """
    urls, scorers, fallback, special = _settings()
    wire = normalize_scorers(scorers)
    located = [
        locate_response(query, prompts[i] if prompts else None, extra_special_tokens=special) for i, query in enumerate(queries)
    ]
    items = [
        ScoreItem(id=str(i), prompt=prompts[i] if prompts else None, completion=found.response,
                  reference=labels[i] if labels else None)
        for i, found in enumerate(located)
        if not isinstance(found, NotLocated)
    ]
    if fallback is None:
        for i, found in enumerate(located):
            if isinstance(found, NotLocated):
                raise ItemNotScored(str(i), Status.UNSCORABLE.value, f"response not located in query: {found.reason}")
    client = shared_client(urls, "raise" if fallback is None else fallback)
    scored: dict[str, tuple[float | None, dict[str, float], str]] = {}
    if items:
        result = client.score(items, wire)
        values = client.rewards(result)  # the policy: raises, or the fallback, for items that are not ok
        for value, item in zip(values, result.results, strict=True):
            # a component's own value only where it is ok (a weight-0 one may not be while the reward is)
            parts = {name: c.value if c.status is Status.OK and c.value is not None else math.nan for name, c in item.components.items()}
            scored[item.id] = (value, parts, item.status.value)
    rewards: list[float] = []
    logs: dict[str, list[float]] = {name: [] for name in wire}
    for i, found in enumerate(located):
        if isinstance(found, NotLocated):
            assert fallback is not None
            reward, parts = fallback, dict.fromkeys(wire, fallback)
        else:
            value, parts, status = scored[str(i)]
            if value is None:  # an `error` under a fallback: OpenRLHF cannot leave a sample out
                raise ItemNotScored(str(i), status, "OpenRLHF cannot leave a sample out")
            reward = value
        rewards.append(reward)
        for name in wire:
            logs[name].append(parts[name])
    tensor = _as_tensor(rewards)
    return {"rewards": tensor, "scores": tensor, "extra_logs": {name: _as_tensor(values) for name, values in logs.items()}}

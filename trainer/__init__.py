"""rewardstack: the client for the reward stack and the adapters for trainers.

`from rewardstack import RewardClient, AsyncRewardClient` is the public entry; the adapters are
`rewardstack.trl`, `rewardstack.verl` and `rewardstack.openrlhf`; `rewardstack.select(...)` is R1's
rejection sampling (docs/curation.md). The server side lives in
`rewardstack.services` and `rewardstack.sandbox`. The names below are loaded on first use (PEP 562),
so importing a server module (the gateway's workers, the sandbox) does not pull in the client, and
the client itself needs only the base install (httpx, pydantic).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "ComponentResult": "rewardstack.services.contract",
    "ItemResult": "rewardstack.services.contract",
    "ScoreBatchResult": "rewardstack.services.contract",
    "ScoreItem": "rewardstack.services.contract",
    "ScorerRequest": "rewardstack.services.contract",
    "Status": "rewardstack.services.contract",
    "DEFAULT_CHUNK_SIZE": "rewardstack.client",
    "DEFAULT_LIMITS": "rewardstack.client",
    "DEFAULT_MAX_CONCURRENCY": "rewardstack.client",
    "DEFAULT_RETRY": "rewardstack.client",
    "DEFAULT_TIMEOUT": "rewardstack.client",
    "AsyncRewardClient": "rewardstack.client",
    "OnUnscored": "rewardstack.client",
    "RetryPolicy": "rewardstack.client",
    "RewardClient": "rewardstack.client",
    "ItemNotScored": "rewardstack.errors",
    "RequestRejected": "rewardstack.errors",
    "RewardstackError": "rewardstack.errors",
    "ServerError": "rewardstack.errors",
    "ServiceTimeout": "rewardstack.errors",
    "ServiceUnavailable": "rewardstack.errors",
    "ServiceUnreachable": "rewardstack.errors",
    "TransportError": "rewardstack.errors",
    "select": "rewardstack.selection",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'rewardstack' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))


if TYPE_CHECKING:
    from rewardstack.services.contract import ComponentResult, ItemResult, ScoreBatchResult, ScoreItem, ScorerRequest, Status
    from rewardstack.client import (
        DEFAULT_CHUNK_SIZE,
        DEFAULT_LIMITS,
        DEFAULT_MAX_CONCURRENCY,
        DEFAULT_RETRY,
        DEFAULT_TIMEOUT,
        AsyncRewardClient,
        OnUnscored,
        RetryPolicy,
        RewardClient,
    )
    from rewardstack.errors import (
        ItemNotScored,
        RequestRejected,
        RewardstackError,
        ServerError,
        ServiceTimeout,
        ServiceUnavailable,
        ServiceUnreachable,
        TransportError,
    )
    from rewardstack.selection import select

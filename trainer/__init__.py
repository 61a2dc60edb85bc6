"""The trainer side of rewardstack: a client for the reward stack and adapters for trainers.

The public names live here so the modules behind them can move. Importing `trainer` needs only
the base install (httpx, pydantic): the TRL adapter, the verl hook and the training entry point
are separate modules that import their frameworks themselves.
"""

from services.contract import ComponentResult, ItemResult, ScoreBatchResult, ScoreItem, ScorerRequest, Status
from trainer.client import (
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
from trainer.errors import (
    ItemNotScored,
    RequestRejected,
    RewardstackError,
    ServerError,
    ServiceTimeout,
    ServiceUnavailable,
    ServiceUnreachable,
    TransportError,
)

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "DEFAULT_LIMITS",
    "DEFAULT_MAX_CONCURRENCY",
    "DEFAULT_RETRY",
    "DEFAULT_TIMEOUT",
    "AsyncRewardClient",
    "ComponentResult",
    "ItemNotScored",
    "ItemResult",
    "OnUnscored",
    "RequestRejected",
    "RetryPolicy",
    "RewardClient",
    "RewardstackError",
    "ScoreBatchResult",
    "ScoreItem",
    "ScorerRequest",
    "ServerError",
    "ServiceTimeout",
    "ServiceUnavailable",
    "ServiceUnreachable",
    "Status",
    "TransportError",
]

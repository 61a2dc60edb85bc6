"""What the reward client raises, split by who must act.

RewardstackError
├── TransportError        our infrastructure failed; the client already retried and failed over
│   ├── ServiceUnreachable    no connection could be made (refused, DNS, reset)
│   ├── ServiceTimeout        no answer in time, or the call's deadline ran out while retrying
│   ├── ServiceUnavailable    408, 429, 502, 503, 504: busy or restarting (Retry-After honoured)
│   └── ServerError           any other 5xx: a gateway bug; retried, then raised, never scored 0.0
├── RequestRejected       4xx: the request is wrong (unknown scorer, bad params); never retried
└── ItemNotScored         policy "raise": an item came back `unscorable`, `timeout` or `error`

Lower errors (httpx's) are translated at one boundary, `client._mapped_transport_errors`, with
`raise ... from exc`, so a caller catches ours and still sees the cause.
"""

from __future__ import annotations

__all__ = [
    "ItemNotScored",
    "RequestRejected",
    "RewardstackError",
    "ServerError",
    "ServiceTimeout",
    "ServiceUnavailable",
    "ServiceUnreachable",
    "TransportError",
]


class RewardstackError(Exception):
    """Base of everything the client raises."""


class TransportError(RewardstackError):
    """The reward service could not answer; a retry or another replica may help."""


class ServiceUnreachable(TransportError):
    """No connection could be made to any of the service's URLs."""


class ServiceTimeout(TransportError):
    """The service did not answer within the timeout or the call's deadline."""


class ServiceUnavailable(TransportError):
    """The service answered 408, 429, 502, 503 or 504: overloaded, rate-limited or restarting."""

    def __init__(self, message: str, status_code: int, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.retry_after_s = retry_after_s


class ServerError(TransportError):
    """The service answered another 5xx: a bug on our side, never a reason to score 0.0."""

    def __init__(self, message: str, status_code: int) -> None:
        super().__init__(message)
        self.status_code = status_code


class RequestRejected(RewardstackError):
    """The service refused the request (4xx). `code` and `detail` come from its error body."""

    def __init__(self, status_code: int, code: str, detail: str) -> None:
        super().__init__(f"{status_code} {code}: {detail}")
        self.status_code = status_code
        self.code = code
        self.detail = detail


class ItemNotScored(RewardstackError):
    """An item came back without a usable reward and the policy says raise."""

    def __init__(self, item_id: str, status: str, detail: str) -> None:
        super().__init__(f"item {item_id!r} not scored: {status}: {detail}")
        self.item_id = item_id
        self.status = status
        self.detail = detail

"""A circuit breaker for the gateway's calls to a service it depends on (model server, LLM judge).

While a dependency is down, calling it for every batch fails each batch only after a connect
error or a timeout, fills logs, and hammers the dependency as it restarts. After
`failure_threshold` failures in a row the breaker opens: calls are refused at once with
`CircuitOpen`, whose message names the dependency, the last failure and when the next try is.
After the cool-down one call goes through as a probe (half-open); its success closes the breaker,
its failure opens it again with the cool-down doubled, up to `max_open_s`. Calls that arrive while
the probe is in flight wait for its outcome rather than fail: the helpfulness and safety calls of
one batch arrive together, and refusing the second while the first proves the server back would
turn a recovered dependency into `error` items.

Which exceptions count is the caller's choice: `failures` count as an outage, `answered` (checked
first; e.g. a 4xx: the request was bad) prove the dependency is up and count as a success. Callers turn `CircuitOpen` into status `error` with
its message as the reason; it is never a score.

    breaker = CircuitBreaker("model server http://models-lb:8200", failures=(ModelUnavailable,))
    outcomes = await breaker.call(lambda: client.score(model, items))
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import TypeVar

T = TypeVar("T")


class CircuitOpen(RuntimeError):
    """The dependency failed repeatedly; the call was not made. The message says why and until when."""


class BreakerState(str, Enum):
    CLOSED = "closed"  # calls go through
    OPEN = "open"  # calls are refused until the cool-down ends
    HALF_OPEN = "half_open"  # one probe call is in flight; the others wait for its outcome


@dataclass
class CircuitBreaker:
    """One dependency's breaker; share one instance among every caller of that dependency.

    Not thread-safe: use it from one event loop (the gateway's).
    """

    name: str
    failures: tuple[type[BaseException], ...]
    answered: tuple[type[BaseException], ...] = ()
    failure_threshold: int = 3
    open_s: float = 1.0
    max_open_s: float = 30.0
    clock: Callable[[], float] = time.monotonic
    state: BreakerState = field(default=BreakerState.CLOSED, init=False)
    _consecutive: int = field(default=0, init=False)
    _cooldown_s: float = field(default=0.0, init=False)
    _retry_at: float = field(default=0.0, init=False)
    _last_failure: str = field(default="", init=False)
    _probe_done: asyncio.Event | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        if self.failure_threshold < 1 or self.open_s <= 0 or self.max_open_s < self.open_s:
            raise ValueError("need failure_threshold >= 1 and 0 < open_s <= max_open_s")
        self._cooldown_s = self.open_s

    async def call(self, make: Callable[[], Awaitable[T]]) -> T:
        """Await `make()` unless the breaker is open; record how it went. Raises `CircuitOpen` when refused."""
        probe = await self._admit()
        try:
            result = await make()
        except self.answered:
            self._succeeded()
            raise
        except self.failures as exc:
            self._failed(f"{type(exc).__name__}: {exc}")
            raise
        except BaseException:
            if self.state is BreakerState.HALF_OPEN:
                self.state = BreakerState.OPEN  # the probe ended without an answer (cancelled): probe again later
            raise
        else:
            self._succeeded()
            return result
        finally:
            if probe is not None:
                probe.set()  # wake the calls that waited for this probe's outcome

    async def _admit(self) -> asyncio.Event | None:
        """Let the call through (returning the event to set when it is the probe) or raise `CircuitOpen`."""
        if self.state is BreakerState.HALF_OPEN and self._probe_done is not None:
            await self._probe_done.wait()  # bounded by the caller's own deadline
            if self.state is BreakerState.CLOSED:
                return None
        if self.state is BreakerState.CLOSED:
            return None
        now = self.clock()
        if self.state is BreakerState.OPEN and now >= self._retry_at:
            self.state = BreakerState.HALF_OPEN  # this call is the probe
            self._probe_done = asyncio.Event()
            return self._probe_done
        wait = max(0.0, self._retry_at - now)
        raise CircuitOpen(
            f"{self.name} is unavailable: {self._consecutive} calls in a row failed, the last with "
            f"{self._last_failure[:300]}; not calling it for another {wait:.1f} s")

    def _failed(self, reason: str) -> None:
        self._consecutive += 1
        self._last_failure = reason
        if self.state is BreakerState.HALF_OPEN:
            self._cooldown_s = min(self._cooldown_s * 2, self.max_open_s)
        elif self._consecutive < self.failure_threshold:
            return
        self.state = BreakerState.OPEN
        self._retry_at = self.clock() + self._cooldown_s

    def _succeeded(self) -> None:
        self.state = BreakerState.CLOSED
        self._consecutive = 0
        self._cooldown_s = self.open_s

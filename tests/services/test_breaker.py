"""The circuit breaker: opens after consecutive outages, refuses with the reason while open, probes
once after the cool-down, backs off while the dependency stays down, and ignores rejected requests.

A fake clock drives time (the breaker takes `clock` for exactly this), so no test sleeps or races.
"""

from __future__ import annotations

import asyncio

import pytest

from rewardstack.services.breaker import BreakerState, CircuitBreaker, CircuitOpen


class Down(RuntimeError):
    pass


class Rejected(Down):
    pass


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Dependency:
    """Counts the calls that reached it; fails with `error` while set."""

    def __init__(self) -> None:
        self.calls = 0
        self.error: Exception | None = Down("connection refused")

    async def __call__(self) -> str:
        self.calls += 1
        if self.error is not None:
            raise self.error
        return "answer"


def _breaker(clock: Clock) -> CircuitBreaker:
    return CircuitBreaker("model server", failures=(Down,), answered=(Rejected,), failure_threshold=3,
                          open_s=1.0, max_open_s=4.0, clock=clock)


def _call(breaker: CircuitBreaker, dependency: Dependency) -> str:
    return asyncio.run(breaker.call(dependency))


def test_opens_after_consecutive_failures_and_refuses_without_calling() -> None:
    clock, dep = Clock(), Dependency()
    breaker = _breaker(clock)
    for _ in range(3):
        with pytest.raises(Down):
            _call(breaker, dep)
    assert breaker.state is BreakerState.OPEN and dep.calls == 3
    for _ in range(50):  # a trainer's tight loop: none of it reaches the dependency
        with pytest.raises(CircuitOpen) as refused:
            _call(breaker, dep)
    assert dep.calls == 3
    assert "model server is unavailable" in str(refused.value) and "connection refused" in str(refused.value)
    assert "1.0 s" in str(refused.value)


def test_probes_once_after_the_cool_down_and_backs_off_while_still_down() -> None:
    clock, dep = Clock(), Dependency()
    breaker = _breaker(clock)
    for _ in range(3):
        with pytest.raises(Down):
            _call(breaker, dep)
    cooldowns = []
    for _ in range(4):
        opened_at = clock.now
        while True:  # advance in small steps until a call gets through
            clock.now += 0.25
            try:
                _call(breaker, dep)
            except CircuitOpen:
                continue
            except Down:
                break
        cooldowns.append(clock.now - opened_at)
    assert cooldowns == [1.0, 2.0, 4.0, 4.0]  # doubled each failed probe, up to max_open_s
    assert dep.calls == 3 + 4


def test_a_successful_probe_closes_it_and_resets_the_back_off() -> None:
    clock, dep = Clock(), Dependency()
    breaker = _breaker(clock)
    for _ in range(3):
        with pytest.raises(Down):
            _call(breaker, dep)
    clock.now += 1.0
    dep.error = None
    assert _call(breaker, dep) == "answer"
    assert breaker.state is BreakerState.CLOSED
    dep.error = Down("again")
    for _ in range(2):  # fewer than the threshold: still closed
        with pytest.raises(Down):
            _call(breaker, dep)
    assert breaker.state is BreakerState.CLOSED


def test_a_rejected_request_proves_the_dependency_is_up() -> None:
    clock, dep = Clock(), Dependency()
    breaker = _breaker(clock)
    for _ in range(2):
        with pytest.raises(Down):
            _call(breaker, dep)
    dep.error = Rejected("422: items[0].response: field required")
    for _ in range(5):
        with pytest.raises(Rejected):
            _call(breaker, dep)
    assert breaker.state is BreakerState.CLOSED and dep.calls == 7


def _opened(clock: Clock, dep: Dependency) -> CircuitBreaker:
    breaker = _breaker(clock)
    for _ in range(3):
        with pytest.raises(Down):
            _call(breaker, dep)
    clock.now += 1.0  # the cool-down is over: the next call is the probe
    return breaker


def test_calls_arriving_during_a_successful_probe_wait_for_it_and_go_through() -> None:
    """Helpfulness and safety of one batch arrive together: the second must not fail while the first probes."""
    clock, dep = Clock(), Dependency()
    breaker = _opened(clock, dep)
    release = asyncio.Event()

    async def slow_probe() -> str:
        await release.wait()
        return "probe answer"

    async def scenario() -> tuple[str, str]:
        probe = asyncio.create_task(breaker.call(slow_probe))
        await asyncio.sleep(0)
        waiting = asyncio.create_task(breaker.call(dep))
        await asyncio.sleep(0)
        assert dep.calls == 3 and not waiting.done()  # held back while the probe is out
        dep.error = None
        release.set()
        return await probe, await waiting

    assert asyncio.run(scenario()) == ("probe answer", "answer")
    assert dep.calls == 4 and breaker.state is BreakerState.CLOSED


def test_calls_arriving_during_a_failed_probe_are_refused_with_its_reason() -> None:
    clock, dep = Clock(), Dependency()
    breaker = _opened(clock, dep)
    release = asyncio.Event()

    async def failing_probe() -> str:
        await release.wait()
        raise Down("still restarting")

    async def scenario() -> str:
        probe = asyncio.create_task(breaker.call(failing_probe))
        await asyncio.sleep(0)
        waiting = asyncio.create_task(breaker.call(dep))
        await asyncio.sleep(0)
        release.set()
        with pytest.raises(Down):
            await probe
        with pytest.raises(CircuitOpen) as refused:
            await waiting
        return str(refused.value)

    message = asyncio.run(scenario())
    assert "still restarting" in message and dep.calls == 3  # the waiting call never reached it
    assert breaker.state is BreakerState.OPEN


def test_refuses_nonsense_settings() -> None:
    with pytest.raises(ValueError):
        CircuitBreaker("x", failures=(Down,), failure_threshold=0)
    with pytest.raises(ValueError):
        CircuitBreaker("x", failures=(Down,), open_s=10, max_open_s=1)

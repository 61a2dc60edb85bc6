"""Gateways for the trainer tests: real servers on free loopback ports, with the scorers the tests use.

`number` and `chars` are the gateway tests' deliberately simple scorers (`number` reads the
completion as a float; `sleep:S` makes it slow, `none` unscorable, `raise` an error); `length`
is the real DAPO/cosine scorer.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI

from rewardstack.services.gateway.app import create_app
from rewardstack.services.scorers.builtin import builtin_cpu_scorers
from rewardstack.services.scorers.length import LengthScorer
from rewardstack.services.scorers.types import CpuScorer
from rewardstack.services.settings import Settings
from tests.servers import running_server
from tests.services.gateway.scorers_for_tests import Length as Chars
from tests.services.gateway.scorers_for_tests import Number

TASK_DEADLINE_S = 1.0


def test_scorers() -> list[CpuScorer]:
    served = {s.name for s in builtin_cpu_scorers()}
    return [Number(), Chars()] + ([] if "length" in served else [LengthScorer()])


test_scorers.__test__ = False  # type: ignore[attr-defined]  # a helper, not a test


def gateway_app(**settings: object) -> FastAPI:
    # serve `length` besides the test scorers: no sandbox or neural models to start
    base: dict[str, object] = {"scorer_workers": 1, "task_deadline_s": TASK_DEADLINE_S, "enabled_scorers": "length"}
    return create_app(Settings(**{**base, **settings}), extra_cpu_scorers=test_scorers())


def items_scored(app: FastAPI) -> int:
    """Items this gateway answered, all statuses, read from its own metrics registry."""
    registry = app.state.metrics.registry
    return int(sum(registry.get_sample_value("rewardstack_items_total", {"status": s}) or 0 for s in ("ok", "unscorable", "timeout", "error")))


def score_requests(app: FastAPI) -> int:
    return int(app.state.metrics.registry.get_sample_value("rewardstack_score_requests_total") or 0)


@pytest.fixture(scope="module")
def gateway() -> Iterator[tuple[FastAPI, str]]:
    app = gateway_app()
    with running_server(app) as url:
        yield app, url


@pytest.fixture(scope="module")
def gateway_url(gateway: tuple[FastAPI, str]) -> str:
    return gateway[1]


SHARED_DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"


@pytest.fixture(scope="module")
def rules_gateway() -> Iterator[tuple[FastAPI, str]]:
    """A gateway with the real `math`, `format` and `length` scorers, as the frameworks' tests use them."""
    app = create_app(Settings(scorer_workers=1, task_deadline_s=60.0, enabled_scorers="math,format,length"))
    with running_server(app) as url:
        yield app, url


@pytest.fixture(scope="module")
def rules_gateway_url(rules_gateway: tuple[FastAPI, str]) -> str:
    return rules_gateway[1]

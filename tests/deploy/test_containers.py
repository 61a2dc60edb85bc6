"""The whole stack in real containers: build the images, compose up 2 gateways + 2 sandboxes behind
the load balancer, score one request that uses every scorer, survive a replica's death, tear down.

Needs podman + podman-compose, which `../shared/tools/container-engine-setup` installs where it can
(root on Debian); skips with the reason where no engine can be set up. Marked `containers` and
`slow`: the first image build takes a few minutes, later ones reuse the layer cache.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator

import httpx
import pytest

from bench.compose_stack import ComposeStack, EngineUnavailable, build_images, setup_engine

pytestmark = [pytest.mark.containers, pytest.mark.slow, pytest.mark.timeout(1800)]

EVERY_SCORER = ("math", "format", "language", "length", "repetition", "code", "helpfulness", "safety")
MATH_ITEM = {
    "id": "math", "prompt": "What is 17 + 25?",
    "completion": "<think>17 plus 25: 7 + 5 is 12, carry one, 1 + 2 + 1 is 4, so 42.</think>\n<answer>\\boxed{42}</answer>",
    "reference": "42", "metadata": {"correct": True},
}
CODE_ITEM = {
    "id": "code", "prompt": "Write f, which doubles its argument.",
    "completion": "<think>Multiply by two.</think>\n<answer>\n```python\ndef f(x):\n    return 2 * x\n```\n</answer>",
    "reference": {"mode": "assert", "tests": ["assert f(2) == 4", "assert f(0) == 0", "assert f(-3) == -6"]},
}
WRONG_CODE_ITEM = {**CODE_ITEM, "id": "wrong-code",
                   "completion": "<think>Add two.</think>\n<answer>\n```python\ndef f(x):\n    return x + 2\n```\n</answer>"}
API_TOKEN = "ci-token-0123456789"  # compose passes both tokens through from the environment
SANDBOX_TOKEN = "ci-sandbox-token-0123456789"
MODELS_TOKEN = "ci-models-token-0123456789"
AUTH = {"Authorization": f"Bearer {API_TOKEN}"}
REQUEST = {
    "items": [MATH_ITEM, CODE_ITEM, WRONG_CODE_ITEM],
    "scorers": {name: ({"params": {"target": "en"}} if name == "language" else {}) for name in EVERY_SCORER},
}


@pytest.fixture(scope="module")
def stack() -> Iterator[ComposeStack]:
    try:
        setup_engine()
    except EngineUnavailable as exc:
        pytest.skip(f"no container engine: {exc}")
    build_images()
    compose = ComposeStack(project="rewardstack-ci", gateways=2, sandboxes=2, scorer_workers=1,
                           extra_env={"REWARDSTACK_API_TOKEN": API_TOKEN, "REWARDSTACK_SANDBOX_API_TOKEN": SANDBOX_TOKEN,
                                      "REWARDSTACK_MODELS_API_TOKEN": MODELS_TOKEN})
    try:
        compose.up()
        compose.wait_ready(EVERY_SCORER, api_token=API_TOKEN)
        yield compose
    finally:
        compose.down()


def _score(stack: ComposeStack) -> dict[str, dict]:
    response = httpx.post(f"{stack.url}/v1/score", json=REQUEST, headers=AUTH, timeout=120)
    assert response.status_code == 200, response.text
    return {item["id"]: item for item in response.json()["results"]}


def test_stack_runs_two_gateways_and_two_sandboxes_behind_the_lb(stack: ComposeStack) -> None:
    assert len(stack.containers("gateway")) == 2
    assert len(stack.containers("sandbox")) == 2
    assert len(stack.containers("lb")) == 1 and len(stack.containers("models")) == 1


def test_one_request_uses_every_scorer_through_the_load_balancer(stack: ComposeStack) -> None:
    results = _score(stack)
    for item in results.values():
        assert set(item["components"]) == set(EVERY_SCORER)
        for name, component in item["components"].items():
            # `unscorable` is the data's verdict (a code reference has no math gold); `error` is ours.
            assert component["status"] in ("ok", "unscorable"), (item["id"], name, component)
    math, code, wrong = results["math"]["components"], results["code"]["components"], results["wrong-code"]["components"]
    assert math["math"] == {**math["math"], "value": 1.0, "status": "ok"}
    assert code["code"]["value"] == 1.0 and wrong["code"]["value"] == 0.0  # judged in a sandbox replica
    assert math["format"]["value"] == 1.0 and math["language"]["value"] == 1.0
    for name in ("helpfulness", "safety"):  # the model server, through the LB
        assert math[name]["status"] == "ok" and isinstance(math[name]["value"], float)


def test_the_token_set_in_the_environment_guards_the_api_and_not_the_probes(stack: ComposeStack) -> None:
    assert httpx.post(f"{stack.url}/v1/score", json=REQUEST, timeout=30).status_code == 401
    wrong = {"Authorization": "Bearer not-the-token-at-all"}
    assert httpx.post(f"{stack.url}/v1/score", json=REQUEST, headers=wrong, timeout=30).status_code == 401
    assert httpx.get(f"{stack.url}/readyz", timeout=30).status_code == 200
    # The sandboxes got theirs: a judge call without it, from inside the stack, is refused, while
    # the gateways' calls (which send it) are judged (test_one_request_uses_every_scorer...).
    (lb,) = stack.containers("lb")
    unauthenticated_judge = (
        "import urllib.request, urllib.error\n"
        "request = urllib.request.Request('http://127.0.0.1:8100/v1/judge', data=b'{}', headers={'content-type': 'application/json'})\n"
        "try:\n    print(urllib.request.urlopen(request, timeout=10).status)\n"
        "except urllib.error.HTTPError as exc:\n    print(exc.code)\n")
    done = subprocess.run(["podman", "exec", lb, "python3", "-c", unauthenticated_judge], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "401", done.stdout + done.stderr


def test_the_lb_publishes_only_loopback_and_the_backend_network_is_internal(stack: ComposeStack) -> None:
    (lb,) = stack.containers("lb")
    ports = subprocess.run(["podman", "port", lb], capture_output=True, text=True, timeout=30).stdout.split()
    assert ports == ["8000/tcp", "->", f"127.0.0.1:{stack.port}"]
    inspect = subprocess.run(["podman", "network", "inspect", f"{stack.project}_backend"],
                             capture_output=True, text=True, timeout=30)
    assert inspect.returncode == 0, inspect.stderr
    assert json.loads(inspect.stdout)[0]["internal"] is True  # gateways, sandboxes, models: no way out


def test_stack_serves_on_after_a_gateway_and_a_sandbox_replica_die(stack: ComposeStack) -> None:
    killed = []
    for service, port in (("gateway", 8000), ("sandbox", 8100)):
        name = stack.containers(service)[0]
        killed.append((name, stack.kill(name), port))
    for _ in range(3):  # the surviving replicas answer while the killed ones restart
        results = _score(stack)
        assert results["code"]["components"]["code"]["value"] == 1.0
    for name, restarts_before, port in killed:
        stack.wait_recovered(name, restarts_before, port)
    results = _score(stack)
    assert all(c["status"] in ("ok", "unscorable") for item in results.values() for c in item["components"].values())

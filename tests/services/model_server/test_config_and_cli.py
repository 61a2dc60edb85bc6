"""Models files are validated up front; `rewardstack models` serves them and refuses bad ones."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from pydantic import ValidationError

from rewardstack.services.model_server.cli import main
from rewardstack.services.model_server.config import ModelServerSettings, ModelSpec, load_models_file
from rewardstack.services.model_server.served import load_backends
from tests.servers import free_port
from tests.services.model_server.fixtures import wait_ready

PROJECT_ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize(
    ("spec", "needle"),
    [
        pytest.param({"kind": "reward"}, "needs `path`", id="reward-without-path"),
        pytest.param({"kind": "embedded"}, "needs `head`", id="embedded-without-head"),
        pytest.param({"kind": "guard", "path": "/m", "labels": {"safe": "safe"}}, "'safe' and 'unsafe'", id="guard-missing-unsafe"),
        pytest.param({"kind": "guard", "path": "/m", "labels": {"safe": "a", "unsafe": "b", "maybe": "c"}}, "optionally 'controversial'", id="guard-unknown-class"),
        pytest.param({"kind": "guard", "path": "/m", "backend": "vllm"}, "reward` models only", id="vllm-guard"),
        pytest.param({"kind": "reward", "path": "/m", "max_length": 4}, "max_length", id="tiny-window"),
        pytest.param({"kind": "reward", "path": "/m", "temperature": 0}, "temperature", id="unknown-field"),
    ],
)
def test_bad_model_specs_are_refused(spec: dict, needle: str) -> None:
    with pytest.raises(ValidationError, match=needle):
        ModelSpec.model_validate(spec)


def test_a_models_file_error_names_the_file_and_field(tmp_path: Path) -> None:
    path = tmp_path / "models.json"
    path.write_text(json.dumps({"models": {"rm": {"kind": "reward", "path": "/m", "max_length": "long"}}}))
    with pytest.raises(ValueError, match=r"models\.json[\s\S]*models\.rm\.max_length"):
        load_models_file(path)


def test_missing_weights_are_a_startup_error_naming_the_model(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="model 'rm': .*does not exist .*never downloaded"):
        load_backends({"rm": ModelSpec(kind="reward", path=tmp_path / "absent")})


def test_the_default_is_the_embedded_models_on_loopback_8200() -> None:
    settings = ModelServerSettings()
    assert (settings.host, settings.port) == ("127.0.0.1", 8200)
    assert {name: spec.kind for name, spec in settings.models().items()} == {"helpfulness": "embedded", "safety": "embedded"}


def test_cli_refuses_an_unreadable_models_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--config", str(tmp_path / "nope.json")]) == 2
    assert "cannot read models file" in capsys.readouterr().err


def test_cli_refuses_a_trivial_token(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("REWARDSTACK_MODELS_API_TOKEN", "short")
    assert main([]) == 2
    assert "REWARDSTACK_MODELS_API_TOKEN must be at least 8 characters" in capsys.readouterr().err


def start_cli(config: Path, port: int, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "rewardstack.services.model_server.cli", "--port", str(port), "--config", str(config), "--log-level", "warning"]
    return subprocess.Popen(command, cwd=PROJECT_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env={**os.environ, **(env or {})})


def test_cli_serves_a_models_file_behind_the_token_from_the_environment(tmp_path: Path, reward_path: Path) -> None:
    config = tmp_path / "models.json"
    config.write_text(json.dumps({"models": {"rm": {"kind": "reward", "path": str(reward_path), "max_length": 128}}}))
    port, token = free_port(), "cli-token-0123456789"
    process = start_cli(config, port, {"REWARDSTACK_MODELS_API_TOKEN": token})
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                assert httpx.get(f"{url}/healthz", timeout=2).json() == {"status": "ok"}
                break
            except httpx.TransportError:
                assert process.poll() is None, process.stderr.read().decode() if process.stderr else ""
                assert time.monotonic() < deadline, "the model server did not start"
                time.sleep(0.2)
        ready = wait_ready(url)
        assert ready.status_code == 200 and ready.json() == {"status": "ready", "models": ["rm"]}
        body = {"items": [{"prompt": "q", "response": "a"}]}
        assert httpx.post(f"{url}/v1/models/rm/score", json=body, timeout=30).status_code == 401
        result = httpx.post(f"{url}/v1/models/rm/score", json=body, headers={"Authorization": f"Bearer {token}"}, timeout=30)
        assert result.json()["results"][0]["status"] == "ok"
    finally:
        process.terminate()
        process.wait(timeout=30)
        if process.stderr:
            process.stderr.close()


def test_cli_exits_with_status_1_when_the_models_fail_to_load(tmp_path: Path) -> None:
    """Weights that are not a model: the server started, loading failed, so it stops rather than idling unready."""
    (tmp_path / "empty").mkdir()
    config = tmp_path / "models.json"
    config.write_text(json.dumps({"models": {"rm": {"kind": "reward", "path": str(tmp_path / "empty")}}}))
    process = start_cli(config, free_port())
    try:
        _, stderr = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 1
    assert "model 'rm' (reward at" in stderr.decode()

"""Models files are validated up front; `rewardstack models` serves them and refuses bad ones."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from pydantic import ValidationError

from services.model_server.cli import main
from services.model_server.config import ModelServerSettings, ModelSpec, load_models_file
from services.model_server.served import load_backends
from tests.servers import free_port

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


def test_cli_serves_a_models_file(tmp_path: Path, reward_path: Path) -> None:
    config = tmp_path / "models.json"
    config.write_text(json.dumps({"models": {"rm": {"kind": "reward", "path": str(reward_path), "max_length": 128}}}))
    port = free_port()
    command = [sys.executable, "-m", "services.model_server.cli", "--port", str(port), "--config", str(config), "--log-level", "warning"]
    process = subprocess.Popen(command, cwd=PROJECT_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/health", timeout=2)
                break
            except httpx.TransportError:
                assert process.poll() is None, process.stderr.read().decode() if process.stderr else ""
                assert time.monotonic() < deadline, "the model server did not start"
                time.sleep(0.2)
        assert health.json() == {"status": "ok", "models": ["rm"]}
        result = httpx.post(f"http://127.0.0.1:{port}/v1/models/rm/score", json={"items": [{"prompt": "q", "response": "a"}]}, timeout=30)
        assert result.json()["results"][0]["status"] == "ok"
    finally:
        process.terminate()
        process.wait(timeout=30)
        if process.stderr:
            process.stderr.close()

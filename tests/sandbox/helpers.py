"""Helpers shared by the sandbox tests: settings for test servers and thin API calls."""

from __future__ import annotations

import os

import httpx

from rewardstack.sandbox.settings import SandboxSettings

# Host uids of this session's runs: away from other sandboxes on the machine, so the host-side
# "no process of a run survives" check sees only ours.
HOST_UID_BASE = 200_000 + (os.getpid() % 1000) * 16
SECRET_ENV = "REWARDSTACK_TEST_SECRET"


def sandbox_settings(**overrides: object) -> SandboxSettings:
    values: dict[str, object] = {"slots": 2, "host_uid_base": HOST_UID_BASE, "default_cpu_s": 2.0}
    values.update(overrides)
    return SandboxSettings(**values)  # type: ignore[arg-type]


def run(client: httpx.Client, code: str, language: str = "python", stdin: str = "", **limits: object) -> dict:
    response = client.post("/v1/run", json={"language": language, "code": code, "stdin": stdin, "limits": limits})
    assert response.status_code == 200, response.text
    return response.json()


def judge(client: httpx.Client, **body: object) -> dict:
    body.setdefault("language", "python")
    response = client.post("/v1/judge", json=body)
    assert response.status_code == 200, response.text
    return response.json()

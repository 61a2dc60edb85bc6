"""The deployment files agree with the Kubernetes schemas and with each other.

Kubernetes manifests are validated against the official schemas (`kubernetes-validate`, strict:
unknown fields fail). The rest checks what a schema cannot: every workload has probes, requests and
limits and runs unprivileged; each kustomization lists files that exist; compose.yaml, the HAProxy
config and the Dockerfile name the same services, ports and build targets.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

kubernetes_validate = pytest.importorskip("kubernetes_validate", reason="pip install 'rewardstack[dev]' for kubernetes-validate")

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
KUBERNETES_VERSION = "1.30.0"  # the oldest schema with every field used (appArmorProfile: 1.30)
MANIFESTS = sorted(p for p in K8S.rglob("*.yaml") if p.name != "kustomization.yaml")
KUSTOMIZATIONS = sorted(K8S.rglob("kustomization.yaml"))
WORKLOADS = [
    pytest.param(path, doc, id=f"{path.relative_to(K8S)}:{doc['metadata']['name']}")
    for path in MANIFESTS
    for doc in yaml.safe_load_all(path.read_text())
    if doc and doc["kind"] == "Deployment"
]
ROLE_PORTS = {"gateway": 8000, "sandbox": 8100, "models": 8200}
READY_PATHS = {"gateway": "/readyz", "sandbox": "/readyz", "models": "/readyz"}  # what each service answers
# What the sandbox's executors need to write their user namespaces' uid/gid maps, and nothing more.
SANDBOX_CAPABILITIES = ["SETUID", "SETGID", "SETFCAP", "SYS_ADMIN"]


def _documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def test_there_are_manifests_for_every_role() -> None:
    names = {doc["metadata"]["name"] for path in MANIFESTS for doc in _documents(path) if doc["kind"] == "Deployment"}
    assert names == {"rewardstack-gateway", "rewardstack-sandbox", "rewardstack-models"}


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: str(p.relative_to(K8S)))
@pytest.mark.parametrize("version", [KUBERNETES_VERSION, kubernetes_validate.latest_version()])
def test_manifest_validates_against_kubernetes_schema(path: Path, version: str) -> None:
    for doc in _documents(path):
        kubernetes_validate.validate(doc, version, strict=True)


@pytest.mark.parametrize(("path", "doc"), WORKLOADS)
def test_workload_has_probes_resources_and_runs_unprivileged(path: Path, doc: dict[str, Any]) -> None:
    pod = doc["spec"]["template"]["spec"]
    role = doc["metadata"]["labels"]["app.kubernetes.io/component"]
    # The sandbox alone runs as root, in its own user namespace (see the test below).
    assert pod["securityContext"]["runAsNonRoot"] is (role != "sandbox")
    assert pod["automountServiceAccountToken"] is False
    (container,) = pod["containers"]
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert probe in container, f"{probe} missing"
    assert container["readinessProbe"]["httpGet"]["path"] == READY_PATHS[role]
    resources = container["resources"]
    assert {"cpu", "memory"} <= set(resources["requests"]) and {"cpu", "memory"} <= set(resources["limits"])
    security = container["securityContext"]
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    assert security["capabilities"].get("add", []) == (SANDBOX_CAPABILITIES if role == "sandbox" else [])
    assert security["readOnlyRootFilesystem"] is True
    assert container["ports"][0]["containerPort"] == ROLE_PORTS[role]
    assert str(ROLE_PORTS[role]) in container["command"]


@pytest.mark.parametrize("role", ["gateway", "sandbox", "models"])
def test_every_role_has_service_hpa_and_pdb(role: str) -> None:
    for variant in ("cpu", "gpu"):
        files = [*(p for p in MANIFESTS if p.parent.name == "base"), K8S / variant / "models.yaml"]
        kinds = {doc["kind"] for path in files for doc in _documents(path) if doc["metadata"]["name"] == f"rewardstack-{role}"}
        assert {"Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget"} <= kinds, (variant, kinds)


def test_gpu_variant_schedules_on_a_gpu_and_cpu_variant_does_not() -> None:
    def container(variant: str) -> dict[str, Any]:
        (deployment,) = [d for d in _documents(K8S / variant / "models.yaml") if d["kind"] == "Deployment"]
        return deployment["spec"]["template"]["spec"]

    gpu, cpu = container("gpu"), container("cpu")
    assert gpu["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert any(t["key"] == "nvidia.com/gpu" for t in gpu["tolerations"])
    assert "nvidia.com/gpu" not in cpu["containers"][0]["resources"]["limits"]


def test_sandbox_pod_gets_only_the_privileges_its_isolation_needs() -> None:
    (deployment,) = [d for d in _documents(K8S / "base" / "sandbox.yaml") if d["kind"] == "Deployment"]
    pod = deployment["spec"]["template"]["spec"]
    security = pod["containers"][0]["securityContext"]
    assert pod["hostUsers"] is False  # its own user namespace: root in the pod is nobody on the node
    assert security["capabilities"] == {"drop": ["ALL"], "add": SANDBOX_CAPABILITIES}
    assert security["seccompProfile"] == {"type": "Localhost", "localhostProfile": "rewardstack/sandbox.json"}
    assert security["procMount"] == "Unmasked"  # the slot's own /proc; allowed with hostUsers: false
    assert "privileged" not in security


def test_sandbox_seccomp_profile_denies_by_default_and_allows_only_what_isolation_adds() -> None:
    import json

    profile = json.loads((ROOT / "deploy" / "seccomp" / "sandbox.json").read_text())
    assert profile["defaultAction"] == "SCMP_ACT_ERRNO"
    unconditional = {name for rule in profile["syscalls"] if rule["action"] == "SCMP_ACT_ALLOW" and not rule.get("includes")
                     for name in rule["names"]}
    assert {"unshare", "mount", "umount2", "pivot_root", "sethostname"} <= unconditional
    assert not {"bpf", "perf_event_open", "kexec_load", "init_module", "open_by_handle_at", "delete_module"} & unconditional


@pytest.mark.parametrize("path", KUSTOMIZATIONS, ids=lambda p: str(p.relative_to(K8S)))
def test_kustomization_resources_exist(path: Path) -> None:
    for resource in yaml.safe_load(path.read_text())["resources"]:
        target = (path.parent / resource).resolve()
        assert target.is_file() or (target / "kustomization.yaml").is_file(), f"{path}: {resource} not found"


def test_network_policy_gives_sandbox_and_models_no_egress() -> None:
    policies = {d["metadata"]["name"]: d for d in _documents(K8S / "base" / "network-policy.yaml")}
    assert policies["rewardstack-default-deny"]["spec"]["podSelector"] == {}
    for name in ("rewardstack-sandbox", "rewardstack-models"):
        assert "Egress" in policies[name]["spec"]["policyTypes"] and policies[name]["spec"]["egress"] == []


# compose.yaml, HAProxy and the Dockerfile


def _compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "compose.yaml").read_text())


def test_compose_publishes_only_the_load_balancer_on_loopback() -> None:
    services = _compose()["services"]
    published = {name: svc["ports"] for name, svc in services.items() if "ports" in svc}
    assert list(published) == ["lb"]
    assert published["lb"] == ["127.0.0.1:${REWARDSTACK_PORT:-8000}:8000"]


def test_compose_runs_replicas_and_a_gpu_profile() -> None:
    services = _compose()["services"]
    for role in ("gateway", "sandbox", "models"):
        deploy = services[role]["deploy"]
        # podman-compose honours deploy.replicas only with mode: replicated
        assert deploy["mode"] == "replicated" and "replicas" in deploy
        assert deploy["replicas"].endswith(":-2}"), role  # two of each by default: one can die
    gpu = services["models-gpu"]
    assert gpu["profiles"] == ["gpu"]
    assert gpu["deploy"]["resources"]["reservations"]["devices"][0]["capabilities"] == ["gpu"]
    assert "profiles" not in services["models"]


def test_compose_every_service_drops_capabilities_and_builds_a_dockerfile_target() -> None:
    targets = set(re.findall(r"^FROM \S+ AS (\S+)$", (ROOT / "docker" / "Dockerfile").read_text(), re.M))
    for name, svc in _compose()["services"].items():
        assert svc["cap_drop"] == ["ALL"], name
        assert svc.get("cap_add", []) == (SANDBOX_CAPABILITIES if name == "sandbox" else []), name
        assert not svc.get("privileged") and "no-new-privileges=true" in svc["security_opt"], name
        if name == "judge":  # the optional judge profile runs vLLM's own image, not one of ours
            assert svc["profiles"] == ["judge"] and svc["image"].startswith("vllm/vllm-openai:"), name
            # only on the gateways' model network, at the address their extra_hosts give the name `judge`
            assert svc["networks"] == {"model-calls": {"ipv4_address": "10.213.4.3"}} and "ports" not in svc, name
            assert "judge:10.213.4.3" in _compose()["services"]["gateway"]["extra_hosts"]
            continue
        assert svc["build"]["target"] in targets, name
        assert svc["image"] == f"rewardstack-{svc['build']['target']}:latest", name
        assert svc["restart"] == "always", name  # a crashed or OOM-killed container comes back
        if name != "tokens":  # it serves nothing to check
            assert "healthcheck" in svc, name  # compose's own: podman's default image format drops HEALTHCHECK
        assert "depends_on" not in svc, name  # podman does not restart a container whose dependency is down


LB_ROLES = {"lb": ("gateways.cfg", "gateway", 8000), "sandbox-lb": ("sandboxes.cfg", "sandbox", 8100),
            "models-lb": ("models.cfg", "models", 8200)}


def _networks(svc: dict[str, Any]) -> dict[str, Any]:
    networks = svc.get("networks", {})
    return {n: {} for n in networks} if isinstance(networks, list) else networks


def test_each_load_balancer_serves_one_segment_and_lists_its_replicas_address_range() -> None:
    compose = _compose()
    services, networks = compose["services"], compose["networks"]
    common = (ROOT / "docker" / "lb" / "haproxy.cfg").read_text()
    assert "retry-on conn-failure" in common and "option redispatch" in common and not re.search(r"^backend ", common, re.M)
    for lb, (config_file, role, port) in LB_ROLES.items():
        assert services[lb]["command"][-2:] == ["-f", f"/etc/haproxy/{config_file}"], lb
        config = (ROOT / "docker" / "lb" / config_file).read_text()
        assert len(re.findall(r"^backend ", config, re.M)) == 1 and f"bind :{port}" in config
        assert "balance leastconn" in config and f"option httpchk GET {READY_PATHS[services[role]['build']['target']]}" in config
        (replica_network,) = [n for n in _networks(services[role]) if n in _networks(services[lb])]
        ip_range = networks[replica_network]["ipam"]["config"][0]["ip_range"]
        prefix, first = ip_range.rsplit(".", 1)[0], int(ip_range.rsplit(".", 1)[1].split("/")[0])
        size = 2 ** (32 - int(ip_range.split("/")[1]))
        listed = re.findall(rf"^\s+server \S+ ({re.escape(prefix)}\.\d+):{port}( backup)?$", config, re.M)
        assert sorted(int(a.rsplit(".", 1)[1]) for a, _ in listed if not (role == "models" and a.endswith(".3"))) == list(range(first, first + size)), lb
    assert "server models-gpu 10.213.5.3:8200\n" in (ROOT / "docker" / "lb" / "models.cfg").read_text()
    assert services["models-gpu"]["networks"]["model-runs"]["ipv4_address"] == "10.213.5.3"


def test_compose_segments_the_backend_and_only_the_lb_has_a_way_out() -> None:
    compose = _compose()
    services, networks = compose["services"], compose["networks"]
    assert "internal" not in networks["edge"]
    for name, network in networks.items():
        if name != "edge":
            assert network["internal"] is True and network["x-podman.disable_dns"] is True, name
    member = {name: set(_networks(svc)) for name, svc in services.items() if "networks" in svc}
    assert [name for name, nets in member.items() if "edge" in nets] == ["lb"]
    assert member["sandbox"] == {"sandbox-runs"} and member["models"] == member["models-gpu"] == {"model-runs"}
    assert member["gateway"] == {"front", "sandbox-calls", "model-calls"}
    for other in ("gateway", "models", "lb", "models-lb"):  # a sandbox shares a network with its own LB only
        assert not member["sandbox"] & member[other], other
    assert services["tokens"]["network_mode"] == "none"


def test_compose_makes_service_tokens_and_every_service_reads_its_own() -> None:
    services = _compose()["services"]
    made = services["tokens"]["entrypoint"]
    for role, variables in (("gateway", ("SANDBOX", "MODELS")), ("sandbox", ("SANDBOX",)), ("models", ("MODELS",)), ("models-gpu", ("MODELS",))):
        svc = services[role]
        assert svc["entrypoint"][:3] == ["python", "/src/docker/stack_tokens.py", "exec"], role
        for variable in variables:
            path = svc["environment"][f"REWARDSTACK_{variable}_API_TOKEN_FILE"]
            assert path.rsplit("/", 1)[0] in made, (role, path)
            assert f"{variable.lower()}-token:{path.rsplit('/', 1)[0]}:ro" in svc["volumes"], role
    assert not any("models-token" in v for v in services["sandbox"]["volumes"])  # the sandbox gets its own only

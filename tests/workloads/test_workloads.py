"""The workload layer: every manifest valid and checkov-clean, GPU sharing, the catalog, TF-Serving,
network policies, TLS, verification, and a blast radius of one catalog entry."""

from __future__ import annotations

import ipaddress
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.helpers import PROJECT, evaluate_config, stack_config, unavailable
from tests.support.workloads import CATALOG_SECRETS, pod, with_llm_server, with_model_source
from tools.render.evaluate import Evaluation, Secret
from tools.render.write import reveal, write_all

K8S_VERSION = "1.32.0"
# cert-manager's, prometheus-operator's and the Gateway API's kinds: kubernetes-validate knows
# only built-in kinds (test_gateway.py checks the Gateway API objects against their CRDs).
CRD_KINDS = {"Certificate", "ClusterIssuer", "PrometheusRule", "GatewayClass", "Gateway", "HTTPRoute"}
NOT_MANIFESTS = CRD_KINDS | {"HelmRelease"}  # Release inputs are Helm's, not a Kubernetes object
TOOLS = PROJECT / ".venv-tools" / "bin"

@pytest.fixture(scope="module")
def manifests(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The dev render, with a fetched TF model so the init container is validated too, and a
    model server using every pod setting of the catalog (secret env, cache, shm, escape hatch)."""
    out = tmp_path_factory.mktemp("render")
    write_all(evaluate_config(with_llm_server(with_model_source(stack_config("dev"))), secrets=CATALOG_SECRETS), out)
    return out / "artifacts" / "kubernetes"



def kind_of(path: Path) -> str:
    doc = yaml.safe_load(path.read_text())
    return "HelmRelease" if "chart" in doc and "kind" not in doc else str(doc["kind"])  # a helm.v3.Release's inputs


def tool(name: str, where: Path) -> str:
    path = where / name
    if not path.exists():
        unavailable(f"{name} not installed; run make venv")
    return str(path)


def test_every_manifest_passes_strict_schema_validation(manifests: Path) -> None:
    files = sorted(p for p in manifests.glob("*.yaml") if kind_of(p) not in NOT_MANIFESTS)
    assert len(files) >= 30
    validate = tool("kubernetes-validate", PROJECT / ".venv" / "bin")
    result = subprocess.run([validate, "--strict", "-k", K8S_VERSION, "--quiet", *map(str, files)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert {kind_of(p) for p in manifests.glob("*.yaml")} - {kind_of(p) for p in files} == NOT_MANIFESTS


def test_checkov_finds_nothing(manifests: Path) -> None:
    checkov = tool("checkov", TOOLS)
    result = subprocess.run([checkov, "-d", str(manifests), "--config-file", str(PROJECT / ".checkov.yaml")],
                            capture_output=True, text=True, timeout=600, cwd=PROJECT)
    assert result.returncode == 0, result.stdout[-4000:]
    assert "Failed checks: 0" in result.stdout
    # Every stack-wide skip sits in one file, each with its reason on the lines above it; a
    # model's own waivers sit on its Deployment with theirs (components/workloads/pod.py).
    config = (PROJECT / ".checkov.yaml").read_text().splitlines()
    for i, line in enumerate(config):
        if line.strip().startswith("- CKV"):
            assert config[i - 1].strip().startswith("#"), f"skip without a reason: {line}"


def test_gpu_workloads_request_a_shared_gpu_on_gpu_nodes(dev: Evaluation) -> None:
    for name in ("ocr-engine", "layout-engine", "tf-serving"):
        spec = pod(dev, name)
        assert spec["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1", name
        assert spec["runtimeClassName"] == "nvidia"
        terms = spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
        assert terms == [{"matchExpressions": [{"key": "hybrid-ai.node-restriction.kubernetes.io/gpu-model", "operator": "Exists"}]}]
    receipt = pod(dev, "receipt-api")
    assert receipt["nodeSelector"] == {"hybrid-ai.node-restriction.kubernetes.io/location": "cloud"}
    assert "nvidia.com/gpu" not in receipt["containers"][0]["resources"]["limits"]


def test_time_slicing_config_and_plugin(dev: Evaluation) -> None:
    data = dev.by_name("gpu-sharing-config").inputs["data"]
    assert set(data) == {"rtx-3090"}
    profile = yaml.safe_load(data["rtx-3090"])
    assert profile["sharing"]["timeSlicing"] == {
        "failRequestsGreaterThanOne": True, "resources": [{"name": "nvidia.com/gpu", "replicas": 4}],
    }
    chart = dev.by_name("gpu-sharing-device-plugin").inputs
    assert chart["chart"] == "nvidia-device-plugin" and chart["version"] == "0.18.2"
    assert chart["values"]["config"] == {"name": "time-slicing-config", "default": "rtx-3090"}
    assert chart["values"]["runtimeClassName"] == "nvidia"


HELM_RELEASE = "kubernetes:helm.sh/v3:Release"
HELM_CHART = "kubernetes:helm.sh/v4:Chart"


def test_charts_whose_hooks_matter_are_releases_the_others_v4_charts(dev: Evaluation) -> None:
    # helm.v4.Chart drops every `helm.sh/hook` resource (pulumi-kubernetes 4.25.0, helm/v4/chart.go):
    # cert-manager's startupapicheck (post-install) would not hold the ClusterIssuer back until
    # the webhook answers. Traefik's chart has no hooks at 41.3.0: a v4 Chart.
    kinds = {r.name: r.type for r in dev.resources if r.type in (HELM_RELEASE, HELM_CHART)}
    assert kinds == {"ingress-traefik": HELM_CHART, "ingress-cert-manager": HELM_RELEASE,
                     "gpu-sharing-device-plugin": HELM_CHART, "monitoring-stack": HELM_RELEASE, "monitoring-dcgm-exporter": HELM_CHART}
    for name, chart, version in (("ingress-cert-manager", "cert-manager", "v1.16.2"),):
        release = dev.by_name(name).inputs
        assert (release["chart"], release["version"], release["name"]) == (chart, version, chart)
        assert release["timeout"] >= 900  # first install: images to pull, hook Jobs to run
        assert not release.get("disableWebhooks")  # "Prevent hooks from running" stays off
    traefik = dev.by_name("ingress-traefik").inputs
    assert (traefik["chart"], traefik["version"], traefik["values"]["deployment"]["kind"]) == ("traefik", "41.3.0", "DaemonSet")
    issuer = dev.by_name("ingress-issuer")
    assert dev.by_name("ingress-cert-manager").urn in issuer.dependencies  # after its startupapicheck hook


def test_chart_pins_list_their_hooks() -> None:
    from stacks.charts import pinned
    assert pinned("traefik").hooks == () and pinned("traefik").skip_await
    assert "templates/startupapicheck-job.yaml" in pinned("cert-manager").hooks
    assert pinned("nvidia-device-plugin").hooks == ()


def test_plugin_rolls_when_the_time_slicing_config_changes() -> None:
    raw = stack_config("dev")
    before = evaluate_config(raw).by_name("gpu-sharing-device-plugin").inputs["values"]["podAnnotations"]
    raw["timeSlicing"]["profiles"][0]["replicas"] = 2
    after = evaluate_config(raw).by_name("gpu-sharing-device-plugin").inputs["values"]["podAnnotations"]
    assert before != after


def test_tf_serving_loads_pinned_versions_from_a_polled_directory(dev: Evaluation) -> None:
    config = dev.by_name("tf-serving-models").inputs["data"]["models.config"]
    assert 'name: "ocr-detector"' in config and "versions: 3" in config
    assert 'name: "ocr-recognizer"' in config and "versions: 7" in config
    spec = pod(dev, "tf-serving")
    container = spec["containers"][0]
    assert "--model_config_file_poll_wait_seconds=30" in container["args"]
    mount = next(m for m in container["volumeMounts"] if m["name"] == "models-config")
    assert mount["mountPath"] == "/etc/tf-serving" and "subPath" not in mount


def policies(ev: Evaluation) -> set[tuple[str, str]]:
    """(from, to) pairs the network policies allow inside the namespace, plus the ingress."""
    allowed = set()
    for r in ev.of_type("kubernetes:networking.k8s.io/v1:NetworkPolicy"):
        spec = r.inputs["spec"]
        match = spec["podSelector"].get("matchLabels", {})
        target = match.get("app.kubernetes.io/name", "acme-solver" if "acme.cert-manager.io/http01-solver" in match else "*")
        for rule in spec.get("ingress", []):
            for peer in rule["from"]:
                if "podSelector" in peer:  # {} selects every pod of the policy's namespace
                    allowed.add((peer["podSelector"].get("matchLabels", {}).get("app.kubernetes.io/name", "*"), target))
                else:
                    allowed.add((peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"], target))
    return allowed


def test_network_policies_deny_by_default_and_allow_only_the_call_graph(dev: Evaluation) -> None:
    deny = dev.by_name("workloads-default-deny").inputs["spec"]
    assert deny == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    assert policies(dev) == {
        ("traefik", "receipt-api"),
        ("receipt-api", "ocr-engine"), ("receipt-api", "layout-engine"), ("receipt-api", "redis"),
        ("ocr-engine", "tf-serving"), ("layout-engine", "tf-serving"),
        ("traefik", "acme-solver"),
        ("prometheus", "tf-serving"), ("*", "grafana"),  # monitoring: scrape, and Grafana from its own namespace only
    }


def test_workloads_are_restricted(dev: Evaluation) -> None:
    ns = dev.by_name("workloads-namespace").inputs["metadata"]["labels"]
    assert ns["pod-security.kubernetes.io/enforce"] == "restricted"
    for r in dev.of_type("kubernetes:apps/v1:Deployment"):
        spec = r.inputs["spec"]["template"]["spec"]
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        for c in spec["containers"]:
            ctx = c["securityContext"]
            assert ctx["allowPrivilegeEscalation"] is False and ctx["capabilities"] == {"drop": ["ALL"]}
            assert {"readinessProbe", "livenessProbe", "startupProbe"} <= set(c)
            assert set(c["resources"]["requests"]) == {"cpu", "memory"}
        labels = r.inputs["metadata"]["labels"]
        assert {"app.kubernetes.io/name", "app.kubernetes.io/component", "app.kubernetes.io/part-of"} <= set(labels)


DIGEST = "@sha256:" + "4" * 64


def with_registry(raw: dict[str, Any]) -> dict[str, Any]:
    raw["registry"] = {"server": "ghcr.io", "username": "bot", "passwordConfig": "registryToken"}
    for m in raw["models"]:
        if m.get("placement") == "cloud" and str(m.get("image", "")).startswith("ghcr.io/"):
            m["image"] = m["image"].rsplit(":", 1)[0] + DIGEST
    return raw


def test_private_registry_pull_secret() -> None:
    raw = with_registry(stack_config("dev"))
    ev = evaluate_config(raw, secrets={"sshPrivateKey": "k", "registryToken": "REGISTRY-CANARY"})
    secret = ev.by_name("registry-pull-secret").inputs
    assert secret["type"] == "kubernetes.io/dockerconfigjson" and isinstance(secret["stringData"], Secret | dict)
    assert "REGISTRY-CANARY" not in str(ev.by_name("registry-pull-secret").inputs.get("metadata"))
    assert pod(ev, "receipt-api")["imagePullSecrets"] == [{"name": "registry-credentials"}]


def test_a_pull_secret_a_workstation_can_read_never_pulls_a_cloud_pod_by_a_tag() -> None:
    """A workstation reads the pull secrets of the pods bound to it (Node authorizer); if the
    credentials can push, it could re-push a tag. So every cloud-only pod that shares a pull
    secret with a pod that can land on a workstation pulls from that registry by digest."""
    raw = with_registry(stack_config("dev"))
    ev = evaluate_config(raw, secrets={"sshPrivateKey": "k", "registryToken": "t"})
    pods = {r.name.removesuffix("-deployment"): reveal(r.inputs)["spec"]["template"]["spec"]
            for r in ev.resources if r.type == "kubernetes:apps/v1:Deployment"}
    secrets_of = {n: {s["name"] for s in p.get("imagePullSecrets", [])} for n, p in pods.items()}
    on_workstations = {n for n, p in pods.items() if "affinity" in p}  # GPU placement: the workstations
    shared = set().union(*(secrets_of[n] for n in on_workstations))
    assert shared == {"registry-credentials"}
    cloud = [n for n in pods if n not in on_workstations and secrets_of[n] & shared]
    assert "receipt-api" in cloud
    for n in cloud:
        assert all("@sha256:" in c["image"] for c in pods[n]["containers"] if c["image"].startswith("ghcr.io/")), n


def test_a_cloud_model_from_the_private_registry_by_tag_alone_is_refused() -> None:
    from stacks.load import ConfigError
    raw = with_registry(stack_config("dev"))
    raw["models"][0]["image"] = "ghcr.io/example/receipt-api:1.4.2"
    seen = Evaluation("test")
    with pytest.raises(ConfigError) as err:
        evaluate_config(raw, secrets={"sshPrivateKey": "k", "registryToken": "t"}, into=seen)
    (problem,) = err.value.problems
    assert problem.startswith("hybrid-ai:models[0].image:") and "digest" in problem, problem
    assert seen.resources == []
    raw["models"][0]["pullSecret"] = False  # a public image: no shared credentials
    raw["models"][0]["image"] = "docker.io/example/receipt-api:1.4.2"
    evaluate_config(raw, secrets={"sshPrivateKey": "k", "registryToken": "t"})


# --- Readiness and timeouts ---------------------------------------------------------------

def test_workloads_wait_for_the_nodes_they_run_on_then_get_a_first_install_timeout(dev: Evaluation) -> None:
    ready = {n: dev.by_name(f"cluster-{n}-ready").urn for n in ("ws-1", "ws-2", "interface")}
    for name in ("ocr-engine", "layout-engine", "tf-serving"):
        deployment = dev.by_name(f"{name}-deployment")
        assert {ready["ws-1"], ready["ws-2"]} <= dev.closure(deployment.urn), name  # both GPU nodes Ready first
        # pulumi-kubernetes waits 10 minutes for a Deployment unless customTimeouts say otherwise.
        assert deployment.timeouts == {"create": "45m", "update": "45m"}, name
    receipt = dev.by_name("receipt-api-deployment")
    assert ready["ws-1"] not in dev.closure(receipt.urn)  # a cloud API does not wait for the office
    assert ready["interface"] in dev.closure(receipt.urn)
    assert receipt.timeouts == {"create": "20m", "update": "20m"}
    assert ready["interface"] in dev.closure(dev.by_name("ingress-traefik").urn)  # the ingress node


# --- Post-deploy probe trusts the right roots -------------------------------------------


def _allows(policy: dict[str, Any], address: str) -> bool:
    """Whether this egress policy's ipBlocks admit `address` (any port)."""
    ip = ipaddress.ip_address(address)
    for rule in policy.get("egress") or []:
        for peer in rule.get("to") or []:
            block = peer.get("ipBlock")
            if block and ip.version == ipaddress.ip_network(block["cidr"]).version and ip in ipaddress.ip_network(block["cidr"]) \
                    and not any(ip in ipaddress.ip_network(e) for e in block.get("except", [])):
                return True
    return False


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_no_pod_of_a_namespace_we_create_reaches_the_cloud_metadata_service(stack: str) -> None:
    ev = evaluate_config(stack_config(stack), stack=stack)
    namespaces = {reveal(r.inputs)["metadata"]["name"] for r in ev.resources if r.type == "kubernetes:core/v1:Namespace"}
    monitored = {"monitoring"} if stack_config(stack).get("monitoring", {}).get("enabled") else set()
    assert namespaces == {"cert-manager", "hybrid-ai", "traefik", "nvidia-device-plugin"} | monitored
    egress: dict[str, list[dict[str, Any]]] = {ns: [] for ns in namespaces}
    for r in ev.resources:
        if r.type == "kubernetes:networking.k8s.io/v1:NetworkPolicy":
            inputs = reveal(r.inputs)
            if "Egress" in inputs["spec"].get("policyTypes", []) and inputs["metadata"]["namespace"] in egress:
                egress[inputs["metadata"]["namespace"]].append(inputs["spec"])
    for ns, policies_here in egress.items():
        assert policies_here, f"namespace {ns}: no egress policy, so its pods reach 169.254.169.254"
        for address in ("169.254.169.254", "fe80::a9fe:a9fe"):
            assert not [p for p in policies_here if _allows(p, address)], (ns, address)


def test_a_deployment_scaled_by_an_hpa_carries_no_replicas(dev: Evaluation) -> None:
    """Kubernetes' HPA guidance: with server-side apply, a `spec.replicas` in the applied Deployment
    conflicts with (or, forced, undoes) the count the HPA set. Deployments without an HPA keep theirs."""
    hpas = [reveal(r.inputs) for r in dev.resources if r.type == "kubernetes:autoscaling/v2:HorizontalPodAutoscaler"]
    scaled = {h["spec"]["scaleTargetRef"]["name"] for h in hpas if h["spec"]["scaleTargetRef"]["kind"] == "Deployment"}
    assert scaled, "the dev stack has a public model, which gets an HPA"
    deployments = {reveal(r.inputs)["metadata"]["name"]: reveal(r.inputs)["spec"] for r in dev.resources if r.type == "kubernetes:apps/v1:Deployment"}
    assert scaled <= set(deployments)
    for name, spec in deployments.items():
        assert ("replicas" in spec) == (name not in scaled), name

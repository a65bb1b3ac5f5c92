"""The workload layer: every manifest valid and checkov-clean, GPU sharing, the catalog, TF-Serving,
network policies, TLS, verification, and a blast radius of one catalog entry."""

from __future__ import annotations

import copy
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from stacks.render.evaluate import Evaluation, PlanChanges, Secret
from stacks.render.write import reveal, split_script, write_all
from tests.helpers import PROJECT, evaluate_config, stack_config, unavailable

K8S_VERSION = "1.32.0"
CRD_KINDS = {"Certificate", "ClusterIssuer", "PrometheusRule"}  # cert-manager's and prometheus-operator's kinds: no upstream schema to check against
NOT_MANIFESTS = CRD_KINDS | {"HelmRelease"}  # Release inputs are Helm's, not a Kubernetes object
TOOLS = PROJECT / ".venv-tools" / "bin"


@pytest.fixture(scope="module")
def dev() -> Evaluation:
    return evaluate_config(stack_config("dev"))


MODEL_SHA = "0" * 64
FETCHED = {"source": "https://models.example.com/ocr-detector-3.tar.gz", "sha256": MODEL_SHA}


def with_model_source(raw: dict[str, Any]) -> dict[str, Any]:
    """The dev stack with ocr-detector's files fetched from an HTTPS source."""
    next(m for m in raw["models"] if m["name"] == "ocr-detector")["tf"].update(FETCHED)
    return raw


@pytest.fixture(scope="module")
def fetching() -> Evaluation:
    return evaluate_config(with_model_source(stack_config("dev")))


@pytest.fixture(scope="module")
def manifests(fetching: Evaluation, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The dev render, with a fetched TF model so the init container is validated too."""
    out = tmp_path_factory.mktemp("render")
    write_all(fetching, out)
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
    # Every skip sits in one file, each with its reason on the lines above it.
    config = (PROJECT / ".checkov.yaml").read_text().splitlines()
    for i, line in enumerate(config):
        if line.strip().startswith("- CKV"):
            assert config[i - 1].strip().startswith("#"), f"skip without a reason: {line}"


def pod(ev: Evaluation, name: str) -> dict[str, Any]:
    return dict(ev.by_name(f"{name}-deployment").inputs["spec"]["template"]["spec"])


def test_gpu_workloads_request_a_shared_gpu_on_gpu_nodes(dev: Evaluation) -> None:
    for name in ("ocr-engine", "layout-engine", "tf-serving"):
        spec = pod(dev, name)
        assert spec["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1", name
        assert spec["runtimeClassName"] == "nvidia"
        terms = spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
        assert terms == [{"matchExpressions": [{"key": "hybrid-ai/gpu-model", "operator": "Exists"}]}]
    receipt = pod(dev, "receipt-api")
    assert receipt["nodeSelector"] == {"hybrid-ai/location": "cloud"}
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
    # helm.v4.Chart drops every `helm.sh/hook` resource (pulumi-kubernetes 4.34.2, Chart.includeHooks):
    # ingress-nginx's admission Secret (job-createSecret.yaml, a pre-install hook) would never
    # exist and its controller never start; cert-manager's startupapicheck (post-install)
    # would not hold the ClusterIssuer back until the webhook answers.
    kinds = {r.name: r.type for r in dev.resources if r.type in (HELM_RELEASE, HELM_CHART)}
    assert kinds == {"ingress-controller": HELM_RELEASE, "ingress-cert-manager": HELM_RELEASE,
                     "gpu-sharing-device-plugin": HELM_CHART, "monitoring-stack": HELM_RELEASE, "monitoring-dcgm-exporter": HELM_CHART}
    for name, chart, version in (("ingress-controller", "ingress-nginx", "4.12.1"), ("ingress-cert-manager", "cert-manager", "v1.16.2")):
        release = dev.by_name(name).inputs
        assert (release["chart"], release["version"], release["name"]) == (chart, version, chart)
        assert release["timeout"] >= 900  # first install: images to pull, hook Jobs to run
        assert not release.get("disableWebhooks")  # "Prevent hooks from running" stays off
    assert dev.by_name("ingress-controller").inputs["values"]["controller"]["kind"] == "DaemonSet"
    issuer = dev.by_name("ingress-issuer")
    assert dev.by_name("ingress-cert-manager").urn in issuer.dependencies  # after its startupapicheck hook


def test_chart_pins_list_their_hooks() -> None:
    from stacks.charts import pinned
    assert "templates/admission-webhooks/job-patch/job-createSecret.yaml" in pinned("ingress-nginx").hooks
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
        ("ingress-nginx", "receipt-api"),
        ("receipt-api", "ocr-engine"), ("receipt-api", "layout-engine"), ("receipt-api", "redis"),
        ("ocr-engine", "tf-serving"), ("layout-engine", "tf-serving"),
        ("ingress-nginx", "acme-solver"),
        ("prometheus", "tf-serving"), ("*", "grafana"),  # monitoring: scrape, and Grafana from its own namespace only
    }


def test_the_ingress_controller_reaches_cert_managers_http01_solver(dev: Evaluation) -> None:
    # cert-manager v1.16.2 runs the solver pod in the Certificate's namespace (ch.Namespace),
    # labelled acme.cert-manager.io/http01-solver=true, on port 8089 (pkg/issuer/acme/http).
    policy = dev.by_name("ingress-acme-solver").inputs
    certificate = dev.by_name("ingress-certificate").inputs
    assert policy["metadata"]["namespace"] == certificate["metadata"]["namespace"] == "hybrid-ai"
    assert policy["spec"] == {
        "podSelector": {"matchLabels": {"acme.cert-manager.io/http01-solver": "true"}},
        "policyTypes": ["Ingress"],
        "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}}],
                     "ports": [{"protocol": "TCP", "port": 8089}]}],
    }
    byo = stack_config("dev")
    byo["ingress"] = {"domain": "api.example.com", "tls": "none"}
    assert "ingress-acme-solver" not in {r.name for r in evaluate_config(byo).resources}  # no ACME, no opening


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


def test_public_api_has_ingress_tls_and_autoscaling(dev: Evaluation) -> None:
    ingress = dev.by_name("receipt-api-ingress").inputs["spec"]
    assert ingress["rules"][0]["host"] == "api.example.com"
    assert ingress["rules"][0]["http"]["paths"][0]["path"] == "/receipt"
    assert ingress["tls"] == [{"hosts": ["api.example.com"], "secretName": "hybrid-ai-tls"}]
    hpa = dev.by_name("receipt-api-hpa").inputs["spec"]
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (2, 6)
    assert dev.by_name("receipt-api-pdb").inputs["spec"]["minAvailable"] == 1
    issuer = dev.by_name("ingress-issuer").inputs["spec"]["acme"]
    assert "acme-staging" in issuer["server"]  # dev uses the staging issuer
    assert not {r.name for r in dev.resources} & {"ocr-engine-hpa", "ocr-engine-ingress"}


def test_prod_uses_the_production_issuer() -> None:
    prod = evaluate_config(stack_config("prod"))
    assert prod.by_name("ingress-issuer").inputs["spec"]["acme"]["server"] == "https://acme-v02.api.letsencrypt.org/directory"


def test_bring_your_own_certificate_stays_secret() -> None:
    raw = stack_config("dev")
    raw["ingress"] = {"domain": "api.example.com", "tls": "byo", "tlsCertConfig": "tlsBundle"}
    pem = "-----BEGIN CERTIFICATE-----\nQ0VSVA==\n-----END CERTIFICATE-----\n-----BEGIN PRIVATE KEY-----\nS0VZLUNBTkFSWQ==\n-----END PRIVATE KEY-----\n"
    ev = evaluate_config(raw, secrets={"sshPrivateKey": "k", "tlsBundle": pem})
    data = ev.by_name("ingress-tls").inputs["stringData"]
    assert isinstance(data, Secret) or all(isinstance(v, Secret) for v in data.values())
    assert reveal(data)["tls.key"].startswith("-----BEGIN PRIVATE KEY-----")
    assert "ingress-issuer" not in {r.name for r in ev.resources}


def test_private_registry_pull_secret() -> None:
    raw = stack_config("dev")
    raw["registry"] = {"server": "ghcr.io", "username": "bot", "passwordConfig": "registryToken"}
    ev = evaluate_config(raw, secrets={"sshPrivateKey": "k", "registryToken": "REGISTRY-CANARY"})
    secret = ev.by_name("registry-pull-secret").inputs
    assert secret["type"] == "kubernetes.io/dockerconfigjson" and isinstance(secret["stringData"], Secret | dict)
    assert "REGISTRY-CANARY" not in str(ev.by_name("registry-pull-secret").inputs.get("metadata"))
    assert pod(ev, "receipt-api")["imagePullSecrets"] == [{"name": "registry-credentials"}]


def test_post_deploy_verification_checks_nodes_gpus_and_the_api(dev: Evaluation) -> None:
    check = dev.by_name("cluster-verify-check")
    _, params = split_script(check.inputs["create"])
    assert params.pop("PROBE_CA").startswith("-----BEGIN CERTIFICATE-----")  # dev: the staging roots
    assert params == {"PROBE_URL": "https://api.example.com/receipt/healthz", "INGRESS_ADDRESS": "203.0.113.11"}
    by_urn = {r.urn: r.name for r in dev.resources}
    deps = {by_urn[d] for d in check.dependencies}
    assert {"cluster-ws-1-ready", "cluster-ws-2-ready", "cluster-interface-ready"} <= deps  # after every node joined
    # Each node's expectations are on the node itself, for the cluster-wide check.
    labels = dev.by_name("cluster-ws-1-labels").inputs["metadata"]["labels"]
    assert labels["hybrid-ai/vpn-address"] == "100.64.1.1"
    assert labels["hybrid-ai/gpu-capacity"] == "4"  # 1 GPU x 4 time-slicing replicas
    assert "hybrid-ai/gpu-capacity" not in dev.by_name("cluster-receipt-labels").inputs["metadata"]["labels"]
    assert dev.outputs["verification"]  # exported


# --- Blast radius -----------------------------------------------------------------------

def changed(before: Evaluation, after: Evaluation) -> PlanChanges:
    """(added, removed, changed-inputs) resource names between two plans."""
    return before.changes(after)


NEW_SERVICE = {"name": "table-engine", "image": "ghcr.io/example/table-engine:0.1.0", "placement": "gpu", "gpus": 1,
               "port": 8000, "talksTo": ["tf-serving"]}
NEW_TF_MODEL = {"name": "table-detector", "kind": "tf-model", "placement": "gpu", "tf": {"basePath": "/models/table-detector", "version": 2}}


def test_adding_a_model_adds_only_its_own_resources(dev: Evaluation) -> None:
    raw = stack_config("dev")
    raw["models"].append(copy.deepcopy(NEW_SERVICE))
    added, removed, modified = changed(dev, evaluate_config(raw))
    assert added == {"table-engine", "table-engine-deployment", "table-engine-service", "table-engine-pdb",
                     "table-engine-egress", "table-engine-to-tf-serving"}
    assert removed == set() and modified == set()


def test_adding_a_tf_model_changes_only_the_tf_serving_model_list(dev: Evaluation) -> None:
    raw = stack_config("dev")
    raw["models"].append(copy.deepcopy(NEW_TF_MODEL))
    added, removed, modified = changed(dev, evaluate_config(raw))
    assert (added, removed, modified) == (set(), set(), {"tf-serving-models"})


def test_removing_a_model_removes_only_its_own_resources(dev: Evaluation) -> None:
    raw = stack_config("dev")
    raw["models"] = [m for m in raw["models"] if m["name"] != "layout-engine"]
    raw["models"][0]["talksTo"] = ["ocr-engine", "redis"]  # the receipt API stops calling it
    added, removed, modified = changed(dev, evaluate_config(raw))
    assert removed == {"layout-engine", "layout-engine-deployment", "layout-engine-service", "layout-engine-pdb",
                       "layout-engine-egress", "layout-engine-to-tf-serving", "receipt-api-to-layout-engine"}
    assert added == set() and modified == {"receipt-api-egress"}  # the caller's own egress list


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
    assert ready["interface"] in dev.closure(dev.by_name("ingress-controller").urn)  # the ingress node


# --- Post-deploy probe trusts the right roots -------------------------------------------

STAGING_FINGERPRINTS = {  # as Let's Encrypt publishes them (docs/staging-environment)
    "(STAGING) Pretend Pear X1": "E7:05:70:A9:89:F8:56:5A:AB:DF:7C:AE:27:AB:D1:62:18:72:D6:A3:F8:11:E3:FE:F2:7E:3D:BA:02:91:21:98",
    "(STAGING) Bogus Broccoli X2": "9B:2A:33:9F:E6:A3:E8:55:85:C4:CD:75:53:6C:B8:C1:CF:7C:D6:03:B9:A6:4B:EC:25:21:85:8A:E4:8D:A8:5D",
}


def pem_blocks(pem: str) -> list[str]:
    return [b + "-----END CERTIFICATE-----\n" for b in pem.split("-----END CERTIFICATE-----\n") if "BEGIN" in b]


def test_shipped_staging_roots_are_lets_encrypts() -> None:
    from components.verify import staging_roots
    found = {}
    for block in pem_blocks(staging_roots()):
        out = subprocess.run(["openssl", "x509", "-noout", "-subject", "-fingerprint", "-sha256", "-nameopt", "multiline"],
                             input=block, capture_output=True, text=True, check=True).stdout
        cn = next(line.split("=", 1)[1].strip() for line in out.splitlines() if "commonName" in line)
        found[cn] = out.rsplit("=", 1)[1].strip()
    assert found == STAGING_FINGERPRINTS


def test_staging_stacks_probe_with_the_staging_roots_prod_with_the_system_store(dev: Evaluation) -> None:
    from components.verify import staging_roots
    check = dev.by_name("cluster-verify-check").inputs
    assert split_script(check["create"])[1]["PROBE_CA"] == staging_roots()
    prod = evaluate_config(stack_config("prod")).by_name("cluster-verify-check").inputs
    assert split_script(prod["create"])[1]["PROBE_CA"] == ""  # the system store
    assert "-k" not in split_script(prod["create"])[0].split() and "--insecure" not in split_script(prod["create"])[0]


# curl as it behaves on TLS: the served chain ends at STAGING_ROOT; without that root in the
# trusted set, exit 60 ("SSL certificate problem"), as a real curl does.
TLS_CURL = """
case " $* " in *" -k "*|*" --insecure "*) echo "curl -k used" >&2; exit 98;; esac
ca=/etc/ssl/certs/ca-certificates.crt prev=
for a in "$@"; do [ "$prev" = --cacert ] && ca=$a; prev=$a; done
grep -qF "$(sed -n 2p "$STATE/served-root")" "$ca" 2>/dev/null || { echo "curl: (60) SSL certificate problem: unable to get local issuer certificate" >&2; exit 60; }
"""


def test_verify_trusts_the_given_roots_and_only_then(tmp_path: Path) -> None:
    from components.verify import staging_roots
    from tests.cluster_stubs import ClusterHost
    from tests.stubs import PROLOGUE
    cp = ClusterHost(tmp_path, "receipt", "100.64.0.2")
    cp.add_node("receipt", "100.64.0.2")
    (cp.bin / "curl").write_text(PROLOGUE + TLS_CURL)
    (cp.state / "served-root").write_text(pem_blocks(staging_roots())[0])
    probe = {"PROBE_URL": "https://api.example.com/receipt/healthz", "INGRESS_ADDRESS": "203.0.113.11", "WAIT_S": "10"}
    trusted = cp.run("verify-cluster.sh", PROBE_CA=staging_roots(), **probe)
    assert trusted.returncode == 0, trusted.stderr
    system = cp.run("verify-cluster.sh", PROBE_CA="", **probe)
    assert system.returncode == 1 and "does not answer through the ingress" in system.stderr
    garbage = cp.run("verify-cluster.sh", PROBE_CA="not a certificate", **probe)
    assert garbage.returncode == 1 and "PROBE_CA is not a PEM certificate bundle" in garbage.stderr


# --- TF-Serving's models volume ---------------------------------------------------------

def test_the_models_volume_binds_on_microk8s_hostpath_storage(dev: Evaluation) -> None:
    # MicroK8s has no default StorageClass; `microk8s enable hostpath-storage` creates
    # `microk8s-hostpath` (microk8s-core-addons 1.32, addons/hostpath-storage/storage.yaml).
    claim = dev.by_name("tf-serving-store").inputs["spec"]
    assert claim["storageClassName"] == "microk8s-hostpath"
    # Its binding mode is WaitForFirstConsumer, and pulumi-kubernetes counts such a claim ready
    # while Pending (await/awaiters.go): the Deployment that consumes it can come after it.
    assert dev.by_name("tf-serving-store").urn in dev.closure(dev.by_name("tf-serving-deployment").urn)
    raw = stack_config("dev")
    raw["tfServing"] = {"storageClass": "fast-nvme"}
    assert evaluate_config(raw).by_name("tf-serving-store").inputs["spec"]["storageClassName"] == "fast-nvme"


def test_a_model_with_a_source_is_fetched_into_the_volume_before_the_server_starts(dev: Evaluation, fetching: Evaluation) -> None:
    from components.tf_serving import FETCH_SCRIPT
    spec = pod(fetching, "tf-serving")
    (init,) = spec["initContainers"]
    assert init["name"] == "fetch-ocr-detector" and init["command"] == ["sh", "/fetch/fetch-model.sh"]
    assert {e["name"]: e["value"] for e in init["env"]} == {
        "SOURCE": FETCHED["source"], "SHA256": MODEL_SHA, "TARGET": "/models/ocr-detector/3"}  # <basePath>/<version>
    assert {"name": "models", "mountPath": "/models"} in init["volumeMounts"]
    assert init["securityContext"]["readOnlyRootFilesystem"] is True and init["securityContext"]["runAsNonRoot"] is True
    server_mount = next(m for m in spec["containers"][0]["volumeMounts"] if m["name"] == "models")
    assert server_mount["readOnly"] is True  # only the fetcher writes
    volume = next(v for v in spec["volumes"] if v["name"] == "models")
    assert "readOnly" not in volume["persistentVolumeClaim"]
    assert fetching.by_name("tf-serving-fetch").inputs["data"] == {"fetch-model.sh": FETCH_SCRIPT.read_text()}
    egress = fetching.by_name("tf-serving-download").inputs["spec"]["egress"]
    assert egress == [{"to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": ["10.1.0.0/16", "10.152.183.0/24"]}}],
                       "ports": [{"protocol": "TCP", "port": 443}]}]
    # Without a source nothing is fetched and nothing may leave the namespace.
    assert "initContainers" not in pod(dev, "tf-serving")
    assert not {"tf-serving-fetch", "tf-serving-download"} & {r.name for r in dev.resources}


@pytest.mark.parametrize(("tf", "message"), [
    ({"source": FETCHED["source"]}, "`source` needs `sha256`"),
    ({**FETCHED, "basePath": "/srv/ocr-detector"}, "with `source`, `basePath` must be `/models/<name>`"),
    ({"source": "http://models.example.com/m.tar.gz", "sha256": MODEL_SHA}, "source"),
])
def test_bad_model_sources_are_rejected_naming_the_key(tf: dict[str, Any], message: str) -> None:
    from stacks.load import ConfigError
    raw = stack_config("dev")
    next(m for m in raw["models"] if m["name"] == "ocr-detector")["tf"].update(tf)
    with pytest.raises(ConfigError) as err:
        evaluate_config(raw)
    (problem,) = err.value.problems
    assert problem.startswith("hybrid-ai:models[3].tf") and message in problem, problem


def model_archive(tmp_path: Path, files: dict[str, str]) -> tuple[Path, str]:
    import hashlib
    import tarfile
    src = tmp_path / "export"
    for rel, text in files.items():
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_text(text)
    archive = tmp_path / "model.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for rel in files:
            tar.add(src / rel, arcname=rel)
    return archive, hashlib.sha256(archive.read_bytes()).hexdigest()


def run_fetch(tmp_path: Path, archive: Path, sha: str, target: Path) -> subprocess.CompletedProcess[str]:
    from components.tf_serving import FETCH_SCRIPT
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    curl = bin_dir / "curl"  # "downloads" the archive: copies it to the -o path, counts calls
    curl.write_text('#!/bin/sh\necho x >> "$CALLS"\nout=\nwhile [ $# -gt 0 ]; do [ "$1" = -o ] && out=$2; shift; done\n'
                    'cp "$ARCHIVE" "$out"\n')
    curl.chmod(0o755)
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "SOURCE": FETCHED["source"], "SHA256": sha, "TARGET": str(target),
           "ARCHIVE": str(archive), "CALLS": str(tmp_path / "calls")}
    return subprocess.run(["sh", str(FETCH_SCRIPT)], env=env, capture_output=True, text=True, timeout=60)


def test_fetch_script_unpacks_a_checked_archive_once(tmp_path: Path) -> None:
    archive, sha = model_archive(tmp_path, {"saved_model.pb": "GRAPH", "variables/variables.index": "IDX"})
    target = tmp_path / "models" / "ocr-detector" / "3"
    first = run_fetch(tmp_path, archive, sha, target)
    assert first.returncode == 0, first.stderr
    assert (target / "saved_model.pb").read_text() == "GRAPH" and (target / "variables" / "variables.index").exists()
    again = run_fetch(tmp_path, archive, sha, target)
    assert again.returncode == 0 and "is in place" in again.stdout
    assert (tmp_path / "calls").read_text().count("x") == 1  # nothing downloaded the second time
    assert sorted(p.name for p in target.parent.iterdir()) == ["3"]  # no work directory left behind


def test_fetch_script_refuses_a_changed_or_malformed_archive(tmp_path: Path) -> None:
    archive, sha = model_archive(tmp_path, {"saved_model.pb": "GRAPH"})
    target = tmp_path / "models" / "m" / "1"
    wrong = run_fetch(tmp_path, archive, "f" * 64, target)
    assert wrong.returncode == 1 and f"has SHA-256 {sha}, the config says {'f' * 64}; refusing it" in wrong.stderr
    assert not target.exists()
    flat, flat_sha = model_archive(tmp_path / "x", {"model/saved_model.pb": "GRAPH"})
    nested = run_fetch(tmp_path, flat, flat_sha, target)
    assert nested.returncode == 1 and "no saved_model.pb at its top level" in nested.stderr
    assert sorted(p.name for p in target.parent.iterdir()) == []


def test_fetch_script_is_posix_sh() -> None:
    from components.tf_serving import FETCH_SCRIPT
    result = subprocess.run(["shellcheck", "-s", "sh", str(FETCH_SCRIPT)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout

"""The llm stack's Kubernetes layer (with a GPU of each sharing mode: tests/kube/conftest.py
`llm_lab_config`) applied by the real Pulumi CLI and pulumi-kubernetes provider to the lab's
real kube-apiserver, after the dev module destroyed its stack on the same API server; then the
real prometheus-adapter loads the rules config its chart got from the program.

Tests run in file order on one stack: the `llm` fixture runs the `up`, the last test destroys."""

from __future__ import annotations

import copy
import json
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.cluster.calico_guard import NOT_HELD, POD_ANNOTATIONS, STATUS_FIELDS
from stacks.config.gpu_budget import MPS_CAPABLE_LABEL, SHARE_LABEL, SHARING_LABEL, eligible, gpu_hosts, memory_share
from stacks.load import validate
from stacks.workloads import nodes_for
from tests.kube.conftest import changes, llm_lab_config
from tests.support.calico_node import api, calico_cni_plugin, calico_node, update_status
from tests.support.chart_mirror import Mirror
from tests.support.helpers import stop_processes, unavailable
from tests.support.kube import KubeStack, with_mirror
from tools.lab.kube import BIN, ControlPlane

pytestmark = [pytest.mark.e2e, pytest.mark.engine, pytest.mark.kube]

ADAPTER = BIN / "prometheus-adapter"
NAMESPACE = "hybrid-ai"


class Llm:
    def __init__(self, kube: KubeStack, raw: dict[str, Any]) -> None:
        self.kube, self.raw, self.cfg = kube, raw, validate(raw)
        self.destroyed = False

    def get(self, *args: str) -> Any:
        return json.loads(self.kube.plane.kubectl("get", *args, "-o", "json").stdout)


@pytest.fixture(scope="module")
def llm(plane: ControlPlane, mirror: Mirror, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Llm]:
    kube = KubeStack(tmp_path_factory.mktemp("kube-llm"), plane, name="llm")
    state = Llm(kube, with_mirror(llm_lab_config(), mirror))
    kube.configure(state.raw)
    try:
        start = time.monotonic()
        result, _ = kube.up("up (llm)")
        print(f"llm stack: {changes(result).get('create', 0)} created in {time.monotonic() - start:.1f} s", flush=True)
        yield state
    finally:
        if not state.destroyed and kube.urns():
            kube.destroy("destroy (llm clean-up)")
        kube.stack.workspace.remove_stack(kube.stack.name, force=True)


def test_each_gpu_node_advertises_what_the_device_plugin_does_under_its_sharing_mode(llm: Llm) -> None:
    offers = gpu_hosts(llm.cfg)
    assert {g.sharing for g in offers} == {"time-slicing", "mps", "exclusive"}, offers
    for g in offers:
        node = llm.get("node", g.name)
        labels = node["metadata"]["labels"]
        # the plugin advertises each GPU as `replicas` nvidia.com/gpu (time-slicing and MPS alike; 1 when exclusive)
        assert node["status"]["allocatable"]["nvidia.com/gpu"] == str(g.count * g.replicas), g
        assert labels.get(SHARING_LABEL) == g.sharing and labels.get(SHARE_LABEL) == str(g.share_mib), (g, labels)
        assert (labels.get(MPS_CAPABLE_LABEL) == "true") == (g.sharing == "mps"), (g, labels)


def test_every_pod_is_ready_on_a_node_its_budget_allows(llm: Llm) -> None:
    cfg = llm.cfg
    gpu = {m.name: m for m in cfg.models if m.placement == "gpu" and m.kind != "tf-model"}
    allowed = {name: {g.name for g in eligible(cfg, m)} for name, m in gpu.items()}
    allowed["tf-serving"] = {g.name for g in eligible(cfg, cfg.tf_serving)}
    cloud = {h.name for h in nodes_for(cfg, "cloud")}
    allowed |= {m.name: cloud for m in cfg.models if m.placement == "cloud"} | {"redis": cloud}
    assert allowed["coder"] == {"ws-3"}, "the whole-GPU model may land only on the exclusive GPUs"
    # ...and ws-3's one GPU is kept for it: no shared model may take it first.
    assert not [name for name in [*gpu, "tf-serving"] if name != "coder" and "ws-3" in allowed[name]], allowed
    deployments = llm.get("deployments", "-n", NAMESPACE)["items"]
    assert {d["metadata"]["name"] for d in deployments} == set(allowed), "a Deployment of the catalog is missing or unexpected"
    pods = llm.get("pods", "-n", NAMESPACE)["items"]
    for dep in deployments:
        name, spec, status = dep["metadata"]["name"], dep["spec"], dep.get("status", {})
        assert status.get("readyReplicas") == spec["replicas"], f"{name} is not ready: {status}"
        mine = [p for p in pods if p["metadata"].get("labels", {}).get("app.kubernetes.io/name") == name]
        where = {p["spec"].get("nodeName") for p in mine}
        assert mine and where <= allowed[name], f"{name} runs on {where}; its budget allows {allowed[name]}"
        if name in gpu and gpu[name].kind == "vllm":
            args = spec["template"]["spec"]["containers"][0]["args"]
            share = [a.split("=", 1)[1] for a in args if a.startswith("--gpu-memory-utilization=")]
            assert [float(v) for v in share] == [memory_share(cfg, gpu[name])], (name, args)
    print(f"{len(deployments)} Deployments ready on the nodes their budgets allow", flush=True)


def test_a_kubelet_cannot_create_a_mirror_pod_that_would_join_a_service(llm: Llm) -> None:
    """NodeRestriction admits a mirror pod bound to and owned by the node itself, with any
    labels; the program's admission policy refuses every pod a node creates (MicroK8s runs no
    static pod), so a workstation cannot put a pod behind a cloud-only Service."""
    plane = llm.kube.plane
    restricted = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}
    owner = {"apiVersion": "v1", "kind": "Node", "name": "ws-1", "uid": llm.get("node", "ws-1")["metadata"]["uid"], "controller": True}
    pod = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": "receipt-api-ws-1", "namespace": NAMESPACE, "labels": {"app.kubernetes.io/name": "receipt-api"},
                        "annotations": {"kubernetes.io/config.mirror": "lab", "kubernetes.io/config.source": "file"},
                        "ownerReferences": [owner]},
           "spec": {"nodeName": "ws-1", "securityContext": {"runAsNonRoot": True, "runAsUser": 10001, "seccompProfile": {"type": "RuntimeDefault"}},
                    "containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10", "securityContext": restricted}]}}
    result = plane.kubectl("create", "-f", "-", as_node="ws-1", check=False, input=yaml.safe_dump(pod))
    if result.returncode == 0:
        plane.kubectl("delete", "pod", "receipt-api-ws-1", "-n", NAMESPACE, "--grace-period=0", "--force", check=False)
    assert result.returncode != 0 and "mirror pod could join" in result.stderr, result.stdout + result.stderr


def _route(llm: Llm) -> dict[str, Any]:
    routes = llm.get("httproutes", "-n", NAMESPACE)["items"]
    chat = [r for r in routes if r["metadata"]["name"].startswith("chat")]
    assert len(chat) == 1, [r["metadata"]["name"] for r in routes]
    return dict(chat[0])


def _dry_run(plane: ControlPlane, obj: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    obj = copy.deepcopy(obj)
    for key in ("resourceVersion", "uid", "creationTimestamp", "generation", "managedFields"):
        obj["metadata"].pop(key, None)
    obj.pop("status", None)
    return plane.kubectl("apply", "--server-side", "--force-conflicts", "--dry-run=server", "--field-manager=lab-dry-run",
                         "-f", "-", input=json.dumps(obj), check=False)


def test_the_llm_route_rewrites_its_public_path_and_a_wrong_rewrite_is_refused(llm: Llm) -> None:
    """The HTTPRoute as applied, then checked again by the API server against the generated
    Gateway API CRDs: as applied it passes, with a rewrite that Gateway API forbids it does not."""
    route = _route(llm)
    rule = route["spec"]["rules"][0]
    public = next(m.public_path for m in llm.cfg.models if m.name == "chat")
    # only the OpenAI routes, which the API key guards: the server's /metrics, /tokenize, /scale_elastic_ep stay inside
    assert [m["path"] for m in rule["matches"]] == [{"type": "PathPrefix", "value": f"{public}/v1"}], rule
    assert rule["filters"] == [{"type": "URLRewrite", "urlRewrite": {"path": {"type": "ReplacePrefixMatch", "replacePrefixMatch": "/v1"}}}], rule
    plane = llm.kube.plane
    same = _dry_run(plane, route)
    assert same.returncode == 0, same.stderr
    exact = copy.deepcopy(route)  # ReplacePrefixMatch is allowed only with a PathPrefix match
    exact["spec"]["rules"][0]["matches"][0]["path"]["type"] = "Exact"
    refused = _dry_run(plane, exact)
    assert refused.returncode != 0 and "replacePrefixMatch" in refused.stderr, refused.stdout + refused.stderr
    mixed = copy.deepcopy(route)  # the modifier's type must name the field it carries
    mixed["spec"]["rules"][0]["filters"][0]["urlRewrite"]["path"]["type"] = "ReplaceFullPath"
    refused = _dry_run(plane, mixed)
    assert refused.returncode != 0 and "when replacePrefixMatch is set" in refused.stderr, refused.stdout + refused.stderr


def _adapter_config(llm: Llm) -> dict[str, Any]:
    maps = llm.get("configmaps", "-n", "monitoring", "-l", "app=prometheus-adapter")["items"]
    assert len(maps) == 1, [m["metadata"]["name"] for m in maps]
    return dict(yaml.safe_load(maps[0]["data"]["config.yaml"]))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _run_adapter(plane: ControlPlane, config: dict[str, Any], tmp: Path, wait: float = 60) -> tuple[bool, str]:
    """The real prometheus-adapter on `config`, against the lab's API server: (serving, log).
    It parses the config and builds its rules' naming (which maps the rules' resources through
    the API server's discovery) before it serves; a rule it refuses ends it."""
    file = tmp / "config.yaml"
    file.write_text(yaml.safe_dump(config))
    log = tmp / "adapter.log"
    kubeconfig = str(plane.kubeconfig)
    argv = [str(ADAPTER), f"--config={file}", "--prometheus-url=http://127.0.0.1:9", f"--lister-kubeconfig={kubeconfig}",
            f"--authentication-kubeconfig={kubeconfig}", f"--authorization-kubeconfig={kubeconfig}",
            "--bind-address=127.0.0.1", f"--secure-port={_free_port()}", f"--cert-dir={tmp / 'certs'}", "--v=2"]
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=out, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and proc.poll() is None:
            if "Serving securely on" in log.read_text(errors="replace"):
                return True, log.read_text(errors="replace")
            time.sleep(0.3)
        return False, log.read_text(errors="replace")
    finally:
        stop_processes([proc], timeout=10)


@pytest.fixture(scope="module")
def adapter() -> Path:
    if not ADAPTER.exists():
        unavailable(f"not built: {ADAPTER} (run `make engine`)")
    return ADAPTER


def test_the_real_prometheus_adapter_loads_the_rules_the_program_gives_its_chart(llm: Llm, adapter: Path, tmp_path: Path) -> None:
    config = _adapter_config(llm)
    assert [r["name"]["as"] for r in config["rules"]] == ["vllm_num_requests_waiting"], config
    serving, log = _run_adapter(llm.kube.plane, config, tmp_path)
    assert serving, log[-3000:]


def _broken(config: dict[str, Any], how: str) -> dict[str, Any]:
    config = copy.deepcopy(config)
    rule = config["rules"][0]
    if how == "unknown-field":
        rule["metricQuery"] = rule.pop("metricsQuery")
    elif how == "template":
        rule["metricsQuery"] = "sum(<<.Series>>{<<.LabelMatchers>>}) by (<<.GroupBy>)"
    elif how == "resource":
        rule["resources"]["overrides"]["pod"]["resource"] = "podz"
    elif how == "name-regex":
        rule["name"]["matches"] = "^vllm:(num_requests_waiting$"
    return config


@pytest.mark.parametrize("how", ["unknown-field", "template", "resource", "name-regex"])
def test_the_real_prometheus_adapter_refuses_a_broken_rule(llm: Llm, adapter: Path, tmp_path: Path, how: str) -> None:
    serving, log = _run_adapter(llm.kube.plane, _broken(_adapter_config(llm), how), tmp_path)
    assert not serving and ("unable to load metrics discovery config" in log or "unable to construct custom metrics provider" in log), log[-3000:]



def test_calico_nodes_token_changes_only_what_calico_writes_on_its_own_node(llm: Llm) -> None:
    """calico-node's token is on every workstation and RBAC lets it patch any Node's status; the
    program's policy admits only what Calico writes, on its pod's node (calico_guard.py)."""
    plane = llm.kube.plane
    schema = json.loads(plane.kubectl("get", "--raw", "/openapi/v3/api/v1").stdout)["components"]["schemas"]
    assert set(schema["io.k8s.api.core.v1.NodeStatus"]["properties"]) == {*STATUS_FIELDS, *NOT_HELD, "conditions"}
    ws1 = next(a["address"] for a in llm.get("node", "ws-1")["status"]["addresses"] if a["type"] == "InternalIP")
    up = {"type": "NetworkUnavailable", "status": "False", "reason": "CalicoIsUp", "message": "Calico is running on this node"}
    try:
        with calico_node(plane, "ws-2") as (token, unbound):
            for node, patch, why in (("ws-2", {"status": {"addresses": [{"type": "InternalIP", "address": ws1}]}}, "may change only"),
                                     ("ws-2", {"status": {"conditions": [{"type": "Ready", "status": "False", "reason": "x"}]}}, "may change only"),
                                     ("ws-2", {"metadata": {"annotations": {"lab-test/by-calico": "x"}}}, "may change only"),
                                     ("ws-1", {"status": {"conditions": [up | {"status": "True"}]}}, "its token is bound to")):
                code, answer = api(plane, token, "PATCH", f"/api/v1/nodes/{node}/status", patch)
                assert code == 403 and why in answer["message"], (node, patch, answer)
            code, answer = api(plane, unbound, "PATCH", "/api/v1/nodes/ws-2/status", {"status": {"conditions": [up]}})
            assert code == 403 and "its token is bound to" in answer["message"], answer
            assert [a for a in llm.get("node", "ws-2")["status"]["addresses"] if a["address"] == ws1] == []
            # What Calico sends (node/pkg/lifecycle/utils SetNodeNetworkUnavailableCondition @ v3.28.1).
            code, answer = api(plane, token, "PATCH", "/api/v1/nodes/ws-2/status", {"status": {"conditions": [up]}})
            assert code == 200 and [c["reason"] for c in answer["status"]["conditions"] if c["type"] == "NetworkUnavailable"] == ["CalicoIsUp"]
            note = "projectcalico.org/IPv4VXLANTunnelAddr"
            assert update_status(plane, token, "ws-2", note, "10.1.7.0")[0] == 200
            assert llm.get("node", "ws-2")["metadata"]["annotations"][note] == "10.1.7.0"
            for node, key, why in (("ws-2", "lab-test/by-calico", "may change only"), ("ws-1", note, "its token is bound to")):
                code, answer = update_status(plane, token, node, key, "x")
                assert code == 403 and why in answer["message"], (node, key, answer)
    finally:
        plane.kubectl("annotate", "node", "ws-2", "projectcalico.org/IPv4VXLANTunnelAddr-", check=False)


def test_calicos_tokens_change_only_calicos_ip_annotations_of_a_pod(llm: Llm) -> None:
    """calico-cni-plugin's token (bound to nothing, on every host) and calico-node's may patch any
    pod's status, so could point a cloud pod's IPs (its Services' endpoints) at a workstation's;
    the policy admits only Calico's IP annotations, from calico-node on its node (calico_guard.py)."""
    plane, cloud = llm.kube.plane, {h.name for h in nodes_for(llm.cfg, "cloud")}
    pods = llm.get("pods", "-n", NAMESPACE)["items"]
    target, ws = (next(p for p in pods if p["spec"].get("nodeName") in where) for where in (cloud, {"ws-2"}))
    path = {n: f"/api/v1/namespaces/{NAMESPACE}/pods/{p['metadata']['name']}/status" for n, p in (("cloud", target), ("ws", ws))}
    moved = {"status": {"podIP": "10.1.7.5", "podIPs": [{"ip": "10.1.7.5"}]}}  # a JSON merge patch: the list replaced
    ready = {"status": {"conditions": [{"type": "Ready", "status": "False", "reason": "lab"}]}}
    notes = {"metadata": {"annotations": dict(zip(POD_ANNOTATIONS, ("10.1.3.9/32", "10.1.3.9/32", "lab"), strict=True))}}
    try:
        with calico_cni_plugin(plane) as cni, calico_node(plane, "ws-2") as (node, _):
            for token, where, patch, why in ((cni, "cloud", moved, "may change only Calico's pod IP"), (cni, "cloud", ready, "may change only"),
                                             (node, "ws", moved, "may change only"), (node, "cloud", notes, "bound to")):
                kind = "application/merge-patch+json" if patch is moved else "application/strategic-merge-patch+json"
                code, answer = api(plane, token, "PATCH", path[where], patch, kind)
                assert code == 403 and why in answer["message"], (where, patch, answer)
            assert llm.get("pod", "-n", NAMESPACE, target["metadata"]["name"])["status"].get("podIPs") == target["status"].get("podIPs")
            for token, where in ((cni, "cloud"), (node, "ws")):  # what the CNI plugin sends (workloadendpoint.go @ v3.28.1)
                code, answer = api(plane, token, "PATCH", path[where], notes)
                assert code == 200 and answer["metadata"]["annotations"][POD_ANNOTATIONS[2]] == "lab", (where, answer)
    finally:
        for p in (target, ws):
            plane.kubectl("annotate", "pod", p["metadata"]["name"], "-n", NAMESPACE, *(f"{k}-" for k in POD_ANNOTATIONS), check=False)


def test_destroy_leaves_nothing_of_the_llm_stack(llm: Llm) -> None:
    lines = "\n".join(llm.kube.destroy("destroy (llm)"))
    llm.destroyed = True
    assert " deleted" in lines, lines
    assert llm.kube.urns() == set()
    assert llm.get("namespaces", "-l", "app.kubernetes.io/part-of=hybrid-ai")["items"] == []

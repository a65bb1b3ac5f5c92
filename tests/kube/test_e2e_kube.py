"""The dev stack's Kubernetes layer applied by the real Pulumi CLI and the real pulumi-kubernetes
provider to a real kube-apiserver (tools/lab/kube.py), then what that API server admits.

Tests run in file order on one stack: the first `up` happens in the `deployed` fixture, the last
test destroys."""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.kit.kube import CLOUD_NODES
from stacks.config import Role
from stacks.load import validate
from stacks.workloads import nodes_for
from tests.kube.conftest import Deployed, changes, ours, trusted_accounts
from tests.support.chart_mirror import CONTROLLERS, STAND_IN
from tools.lab.kube import ControlPlane

pytestmark = [pytest.mark.e2e, pytest.mark.engine, pytest.mark.kube]





def test_the_first_preview_plans_every_create(deployed: Deployed) -> None:
    assert deployed.preview_error is None, deployed.preview_error
    assert " to create" in deployed.preview and "to update" not in deployed.preview, deployed.preview


def test_up_makes_every_deployment_ready_where_the_program_places_it(deployed: Deployed) -> None:
    cfg = validate(deployed.base)
    deployments = deployed.get("deployments", "-A", "-l", "app.kubernetes.io/part-of=hybrid-ai")["items"]
    assert deployments, "no Deployment of ours"
    pods = deployed.get("pods", "-A")["items"]
    placement = {m.name: m.placement for m in cfg.models if m.kind == "service"} | {"redis": "cloud", "tf-serving": "gpu"}
    for dep in deployments:
        name, spec, status = dep["metadata"]["name"], dep["spec"], dep.get("status", {})
        assert status.get("readyReplicas") == spec["replicas"], f"{name} is not ready: {status}"
        mine = [p for p in pods if p["metadata"]["namespace"] == dep["metadata"]["namespace"]
                and p["metadata"].get("labels", {}).get("app.kubernetes.io/name") == name]
        allowed = {h.name for h in nodes_for(cfg, placement[name])}
        where = {p["spec"].get("nodeName") for p in mine}
        assert len(mine) >= spec["replicas"] and where <= allowed, f"{name} runs on {where}, the program places it on {allowed}"
    print(f"{len(deployments)} Deployments ready on their kwok nodes", flush=True)


def test_controllers_that_read_secrets_run_only_at_cloud_sites(deployed: Deployed) -> None:
    """The charts' controllers (stand-in pods placed by the values upstream's templates read)."""
    cfg = validate(deployed.base)
    cloud = {h.name for h in nodes_for(cfg, "cloud")}
    nodes = {n["metadata"]["name"]: n["metadata"].get("labels", {}) for n in deployed.get("nodes")["items"]}
    pods = deployed.get("pods", "-A", "-l", f"{STAND_IN}=true")["items"]
    names = {p["metadata"]["labels"]["app.kubernetes.io/name"] for p in pods}
    assert names == {obj for objs in CONTROLLERS.values() for _, obj, _, _ in objs}, names
    for pod in pods:
        selector = pod["spec"].get("nodeSelector", {})
        admitted = {n for n, labels in nodes.items() if selector.items() <= labels.items()}
        assert admitted <= cloud, f"{pod['metadata']['name']} may run on {sorted(admitted - cloud)}"


def test_second_up_changes_nothing(deployed: Deployed) -> None:
    deployed.kube.configure(deployed.base)
    result, lines = deployed.kube.up("up (no changes)")
    assert set(changes(result)) == {"same"}, lines


def test_adding_then_removing_a_model_touches_only_its_objects(deployed: Deployed) -> None:
    raw = deployed.config()
    raw["models"].append({"name": "extra-api", "image": "ghcr.io/example/extra-api:1.0.0", "placement": "cloud", "port": 8000})
    before = deployed.kube.urns()
    deployed.kube.configure(raw)
    result, lines = deployed.kube.up("up (one model added)")
    added = deployed.kube.urns() - before
    assert set(changes(result)) == {"create", "same"}, lines
    assert added and all(re.search(r"::extra-api(-[\w-]+)?$", u) for u in added), sorted(added)
    assert deployed.get("deployment", "extra-api", "-n", "hybrid-ai")["status"].get("readyReplicas") == 1
    deployed.kube.configure(deployed.base)
    result, lines = deployed.kube.up("up (the model removed)")
    assert set(changes(result)) == {"delete", "same"}, lines
    assert deployed.kube.urns() == before
    assert deployed.kube.plane.kubectl("get", "deployment", "extra-api", "-n", "hybrid-ai", check=False).returncode != 0


def test_server_side_dry_run_admits_every_object_of_the_prod_and_ha_renders(deployed: Deployed, renders: dict[str, list[dict[str, Any]]],
                                                                            tmp_path: Path) -> None:
    plane = deployed.kube.plane
    for stack, docs in renders.items():
        namespaces = {d["metadata"]["namespace"] for d in docs if d["metadata"].get("namespace")}
        made = [n for n in sorted(namespaces) if plane.kubectl("get", "namespace", n, check=False).returncode != 0]
        for n in made:  # a namespaced object is checked only in a namespace that exists
            plane.kubectl("create", "namespace", n)
        try:
            file = tmp_path / f"{stack}.yaml"
            file.write_text(yaml.safe_dump_all(docs))
            start = time.monotonic()
            result = plane.kubectl("apply", "--server-side", "--force-conflicts", "--dry-run=server", "--field-manager=lab-dry-run",
                                   "-f", str(file), check=False)
            assert result.returncode == 0, result.stderr
            assert "Warning" not in result.stderr, result.stderr
            print(f"server-side dry run of {len(docs)} objects of {stack}: {time.monotonic() - start:.1f} s", flush=True)
        finally:
            for n in made:
                plane.kubectl("delete", "namespace", n, "--wait=false")


def _pod_from(template: dict[str, Any], name: str, namespace: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": namespace,
                                                              "labels": template.get("metadata", {}).get("labels", {})},
            "spec": template["spec"]}


def test_pod_security_restricted_admits_every_workload_pod(deployed: Deployed, renders: dict[str, list[dict[str, Any]]]) -> None:
    plane = deployed.kube.plane
    workloads = deployed.get("namespace", "hybrid-ai")["metadata"]["labels"]
    assert workloads["pod-security.kubernetes.io/enforce"] == "restricted"
    check = "pss-restricted-check"
    plane.kubectl("create", "-f", "-", input=yaml.safe_dump({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": check, "labels": {
        "pod-security.kubernetes.io/enforce": "restricted", "pod-security.kubernetes.io/enforce-version": "latest"}}}))
    try:
        deadline = time.monotonic() + 30  # the pods run as the namespace's `default` account
        while plane.kubectl("get", "serviceaccount", "default", "-n", check, check=False).returncode != 0:
            assert time.monotonic() < deadline, "no default ServiceAccount in the new namespace"
            time.sleep(0.3)
        templates = [(f"dev-{d['metadata']['name']}", d["spec"]["template"])
                     for d in deployed.get("deployments", "-n", "hybrid-ai")["items"]]
        templates += [(f"{s}-{d['metadata']['name']}", d["spec"]["template"]) for s, docs in renders.items() for d in docs
                      if d["kind"] == "Deployment" and d["metadata"].get("namespace") == "hybrid-ai"]
        assert len(templates) > 5
        for name, template in templates:
            result = plane.kubectl("create", "--dry-run=server", "-f", "-", input=yaml.safe_dump(_pod_from(template, name, check)), check=False)
            assert result.returncode == 0 and "violate" not in result.stderr, f"{name}: {result.stderr}"
    finally:
        plane.kubectl("delete", "namespace", check, "--wait=false")


def _as_ws1(plane: ControlPlane, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
    return plane.kubectl(*args, as_node="ws-1", check=False, input=input)


def _refused(result: subprocess.CompletedProcess[str]) -> bool:
    return result.returncode != 0 and "forbidden" in result.stderr.lower()


def test_the_kubelet_certificates_are_per_node(deployed: Deployed) -> None:
    from tools.lab.pki import subject

    plane = deployed.kube.plane
    for node in plane.nodes:
        assert subject(plane.root / "pki" / f"kubelet-{node.name}.crt") == (f"system:node:{node.name}", ["system:nodes"])
    # ws-1's own credentials work for what a kubelet does: read its own Node
    assert _as_ws1(plane, "get", "node", "ws-1").returncode == 0


def test_a_kubelet_cannot_create_a_pod_bound_to_the_control_plane(deployed: Deployed) -> None:
    plane = deployed.kube.plane
    seed = validate(deployed.base).hosts_with(Role.CONTROL_PLANE)[0].name
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "from-ws-1", "namespace": "kube-system"},
           "spec": {"nodeName": seed, "containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10"}]}}
    result = _as_ws1(plane, "create", "-f", "-", input=yaml.safe_dump(pod))
    if result.returncode == 0:
        plane.kubectl("delete", "pod", "from-ws-1", "-n", "kube-system", "--grace-period=0", "--force", check=False)
    assert _refused(result), result.stdout + result.stderr


def test_a_kubelet_cannot_label_another_node(deployed: Deployed) -> None:
    """Refused already by the Node authorizer (1.32 lets a node read and write only its own
    Node); NodeRestriction refuses it again at admission."""
    plane = deployed.kube.plane
    result = _as_ws1(plane, "patch", "node", "ws-2", "--type=merge", "-p", '{"metadata": {"labels": {"lab-test/by-ws-1": "yes"}}}')
    if result.returncode == 0:
        plane.kubectl("label", "node", "ws-2", "lab-test/by-ws-1-")
    assert _refused(result), result.stdout + result.stderr


def test_a_kubelet_cannot_set_a_node_restriction_label_on_itself(deployed: Deployed) -> None:
    plane = deployed.kube.plane
    key = next(iter(CLOUD_NODES))  # the program's own placement label
    result = _as_ws1(plane, "label", "node", "ws-1", f"{key}=cloud", "--overwrite")
    if result.returncode == 0:
        plane.kubectl("label", "node", "ws-1", f"{key}-")
    assert _refused(result), result.stdout + result.stderr


def test_cloud_placement_relies_only_on_labels_a_kubelet_cannot_set() -> None:
    domains = {k.split("/", 1)[0] for k in CLOUD_NODES}
    assert domains and all(d == "node-restriction.kubernetes.io" or d.endswith(".node-restriction.kubernetes.io") for d in domains), CLOUD_NODES


def test_no_workload_service_account_reads_secrets_outside_its_namespace(deployed: Deployed) -> None:
    plane = deployed.kube.plane
    namespaces = ours(deployed)
    assert "hybrid-ai" in namespaces
    checked = 0
    for ns in namespaces:
        for sa in deployed.get("serviceaccounts", "-n", ns)["items"]:
            who = f"system:serviceaccount:{ns}:{sa['metadata']['name']}"
            if who in trusted_accounts():
                continue
            for where in ("kube-system", *(n for n in namespaces if n != ns)):
                answer = plane.kubectl("auth", "can-i", "get", "secrets", "-n", where, f"--as={who}", check=False)
                assert answer.stdout.strip() == "no", f"{who} may read Secrets in {where}"
            answer = plane.kubectl("auth", "can-i", "list", "secrets", "--all-namespaces", f"--as={who}", check=False)
            assert answer.stdout.strip() == "no", f"{who} may list Secrets cluster-wide"
            checked += 1
    assert checked >= len(namespaces)
    print(f"{checked} service accounts in {len(namespaces)} namespaces: no Secret outside their own", flush=True)


def test_an_up_with_a_new_image_leaves_the_replicas_the_hpa_set(deployed: Deployed) -> None:
    plane = deployed.kube.plane
    # What the HPA controller does: scale through the scale subresource, as its own field manager.
    plane.kubectl("scale", "deployment", "receipt-api", "-n", "hybrid-ai", "--replicas=4")
    raw = deployed.config()
    model = next(m for m in raw["models"] if m["name"] == "receipt-api")
    model["image"] = model["image"].rsplit(":", 1)[0] + ":9.9.9"
    try:
        deployed.kube.configure(raw)
        result, lines = deployed.kube.up("up (new image, HPA at 4)")
        assert changes(result).get("update", 0) >= 1, lines
        dep = deployed.get("deployment", "receipt-api", "-n", "hybrid-ai")
        assert dep["spec"]["template"]["spec"]["containers"][0]["image"].endswith(":9.9.9")
        assert dep["spec"]["replicas"] == 4, f"the up set replicas back to {dep['spec']['replicas']}"
    finally:
        deployed.kube.configure(deployed.base)


def test_the_node_label_patch_leaves_a_cordoned_nodes_taints_alone(deployed: Deployed) -> None:
    plane = deployed.kube.plane
    plane.kubectl("cordon", "interface")
    unschedulable = "node.kubernetes.io/unschedulable"

    def taints() -> set[str]:
        return {t["key"] for t in deployed.get("node", "interface")["spec"].get("taints", [])}
    deadline = time.monotonic() + 30
    while unschedulable not in taints():
        assert time.monotonic() < deadline, "the node lifecycle controller did not taint the cordoned node"
        time.sleep(0.5)
    raw = deployed.config()
    host = next(h for h in raw["hosts"] if h["name"] == "interface")
    host["labels"] = {**host.get("labels", {}), "example.com/rack": "r2"}  # a label change: the patch is applied again
    try:
        deployed.kube.configure(raw)
        result, lines = deployed.kube.up("up (label change on a cordoned node)")
        assert changes(result).get("update", 0) >= 1, lines
        assert deployed.get("node", "interface")["metadata"]["labels"].get("example.com/rack") == "r2"
        assert unschedulable in taints(), "the label patch removed the cordon's taint"
    finally:
        plane.kubectl("uncordon", "interface")
        deployed.kube.configure(deployed.base)


def test_destroy_leaves_nothing_of_ours(deployed: Deployed) -> None:
    deployed.kube.configure(deployed.base)
    lines = "\n".join(deployed.kube.destroy())
    deployed.destroyed = True
    assert " deleted" in lines, lines
    assert deployed.kube.urns() == set()
    plane = deployed.kube.plane
    assert ours(deployed) == []
    assert plane.kubectl("get", "namespace", "hybrid-ai", check=False).returncode != 0
    left = plane.kubectl("get", "all,configmaps,secrets,networkpolicies,pvc,pv,pdb,hpa,runtimeclass", "-A",
                         "-l", "app.kubernetes.io/part-of=hybrid-ai", "-o", "name").stdout.split()
    assert left == [], left
    # The Gateway API bundle (the program's own ConfigFile) goes. The charts' CRDs stay, as with
    # upstream's charts: Helm never deletes a chart's `crds/` files (kube-prometheus-stack's) nor a
    # template marked `helm.sh/resource-policy: keep` (cert-manager's, `crds.keep` by default).
    crds = plane.kubectl("get", "crd", "-o", "name").stdout.split()
    assert not [c for c in crds if c.endswith(".gateway.networking.k8s.io")], crds
    kept = sorted(c.rsplit("/", 1)[1] for c in crds)
    assert all(c.endswith((".cert-manager.io", ".monitoring.coreos.com")) for c in kept), kept
    print(f"left by the charts, as upstream's are: {', '.join(kept)}", flush=True)
    deadline = time.monotonic() + 30  # the claims' volumes, reclaimed (Delete) by the provisioner
    while volumes := plane.kubectl("get", "pv", "-o", "name").stdout.split():
        assert time.monotonic() < deadline, f"volumes left: {volumes}"
        time.sleep(0.5)
    # Nodes keep their kubelet's labels only: the program's are gone with their patches.
    assert "hybrid-ai/site" not in deployed.get("node", "ws-1")["metadata"]["labels"]

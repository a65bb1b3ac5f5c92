"""Calico's accounts change on a pod only what Calico writes (components/cluster/calico_guard.py):
calico-node and calico-cni-plugin may patch `pods/status` of any pod (MicroK8s 1.32's calico.yaml),
and a status update may move a pod's IPs (Service endpoints follow) or its conditions. Their
tokens are on every workstation; the policy admits from them only the CNI plugin's patch of its
three IP annotations, and from a token that names a node only on that node's pods. The kubelets
and controllers are unaffected. The rendered policy is evaluated (CEL); the real API server's
answer is tests/kube/test_e2e_kube_llm.py's."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from components.cluster.calico_guard import CALICO_CNI, CALICO_NODE, NODE_NAME_EXTRA, POD_ANNOTATIONS
from components.cluster.label_guard import POLICY_NAME
from tests.support.admission import Request, admits, dev_policy, refused

SA_GROUPS = ("system:serviceaccounts", "system:serviceaccounts:kube-system", "system:authenticated")
KUBELET = ("system:node:cp-1", ("system:nodes", "system:authenticated"))
NODE_CONTROLLER = ("system:serviceaccount:kube-system:node-controller", ("system:serviceaccounts", "system:authenticated"))
ADMIN = ("admin", ("system:masters", "system:authenticated"))
Pod = dict[str, Any]
POD_IP, POD_IPS, CONTAINER_ID = POD_ANNOTATIONS


def _condition(kind: str, status: str) -> dict[str, str]:
    return {"type": kind, "status": status, "lastTransitionTime": "2026-12-07T20:00:00Z"}


def a_pod(node: str = "cp-1", ip: str = "10.1.3.7") -> Pod:
    """A running pod behind a Service, as its kubelet and the CNI plugin leave it."""
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "receipt-api-5d9c-x2k4q", "namespace": "hybrid-ai", "uid": "7c1e0b55-0d1f-4d8e-9a51-3f0c2f6f9a10",
                     "labels": {"app.kubernetes.io/name": "receipt-api", "pod-template-hash": "5d9c"},
                     "annotations": {POD_IP: f"{ip}/32", POD_IPS: f"{ip}/32", CONTAINER_ID: "4f1d0c", "kubectl.kubernetes.io/restartedAt": "x"},
                     "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "receipt-api-5d9c", "uid": "u", "controller": True}]},
        "spec": {"nodeName": node, "containers": [{"name": "api", "image": "registry.example/receipt-api:1"}]},
        "status": {"phase": "Running", "hostIP": "100.64.0.2", "hostIPs": [{"ip": "100.64.0.2"}], "podIP": ip, "podIPs": [{"ip": ip}],
                   "conditions": [_condition("Initialized", "True"), _condition("Ready", "True"), _condition("ContainersReady", "True")],
                   "qosClass": "BestEffort", "startTime": "2026-12-07T20:00:00Z"},
    }


def changed(edit: Callable[[Pod], object], pod: Pod | None = None) -> Pod:
    new = copy.deepcopy(pod or a_pod())
    edit(new)
    return new


def calico_patch(ip: str, cid: str = "9a8b7c") -> Callable[[Pod], object]:
    """What the CNI plugin's ADD leaves (DEL: empty IPs, the container ID kept)."""
    return lambda p: p["metadata"]["annotations"].update({POD_IP: f"{ip}/32" if ip else "", POD_IPS: f"{ip}/32" if ip else "", CONTAINER_ID: cid})


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    return dev_policy(POLICY_NAME)



def _status(user: str, old: Pod, new: Pod, on: str | None = None, groups: tuple[str, ...] = SA_GROUPS) -> Request:
    """`user` patches `pods/status`; with a token naming node `on` (calico-node's pod token)."""
    return Request(user, groups, "UPDATE", "pods", "status", new, old, {NODE_NAME_EXTRA: (on,)} if on else None)


WORKSTATION_POD_IP = "10.1.7.5"
EDITS: dict[str, Callable[[Pod], object]] = {
    "podIPs to a workstation pod's": lambda p: p["status"].update(podIP=WORKSTATION_POD_IP, podIPs=[{"ip": WORKSTATION_POD_IP}]),
    "a second pod IP": lambda p: p["status"]["podIPs"].append({"ip": "fd00::5"}),
    "podIPs removed": lambda p: [p["status"].pop(k) for k in ("podIP", "podIPs")],
    "Ready": lambda p: p["status"]["conditions"].__setitem__(1, _condition("Ready", "False")),
    "a condition added": lambda p: p["status"]["conditions"].append(_condition("DisruptionTarget", "True")),
    "the phase": lambda p: p["status"].__setitem__("phase", "Failed"),
    "the host IP": lambda p: p["status"].update(hostIP="100.64.0.12", hostIPs=[{"ip": "100.64.0.12"}]),
    "the status removed": lambda p: p.pop("status"),
    "a label": lambda p: p["metadata"]["labels"].__setitem__("app.kubernetes.io/name", "redis"),
    "an annotation not Calico's": lambda p: p["metadata"]["annotations"].__setitem__("kubectl.kubernetes.io/restartedAt", "y"),
    "an annotation not Calico's removed": lambda p: p["metadata"]["annotations"].pop("kubectl.kubernetes.io/restartedAt"),
    "a Calico annotation Calico only reads": lambda p: p["metadata"]["annotations"].__setitem__(
        "cni.projectcalico.org/allowedSourcePrefixes", '["10.1.3.0/24"]'),
    "a finalizer": lambda p: p["metadata"].__setitem__("finalizers", ["example.com/hold"]),
    "the image (spec; the status strategy resets it anyway)": lambda p: p["spec"]["containers"][0].__setitem__("image", "registry.example/x:1"),
}


@pytest.mark.parametrize("what", sorted(EDITS))
def test_calicos_accounts_change_nothing_of_a_pod_but_calicos_ip_annotations(spec: dict[str, Any], what: str) -> None:
    """The CNI plugin's token (bound to no pod) on a cloud pod, calico-node's on a pod of its own
    node: each refused, alone and along with what Calico does write."""
    for user, node, on in ((CALICO_CNI, "cp-1", None), (CALICO_NODE, "ws-2", "ws-2")):
        old = a_pod(node)
        new = changed(EDITS[what], old)
        assert new != old
        assert refused(spec, _status(user, old, new, on)), (user, what)
        assert refused(spec, _status(user, old, changed(calico_patch("10.1.3.9"), new), on)), (user, what)
    # The pod's kubelet, the node lifecycle controller and the program are not checked by these
    # rules (a pod's labels the program's alone may change: tests/cluster/test_label_guard.py).
    for who in (KUBELET, NODE_CONTROLLER, ADMIN):
        expected = who == ADMIN or what != "a label"
        assert admits(spec, _status(who[0], a_pod(), changed(EDITS[what]), groups=who[1])) == expected, (who, what)


def test_the_cni_plugin_writes_its_ip_annotations_on_any_pod(spec: dict[str, Any]) -> None:
    """Its token names no node (calico-node requests it bound to nothing): ADD and DEL patches on
    any node's pods, and on a pod that had none of them yet."""
    for ip in ("10.1.3.9", ""):
        assert admits(spec, _status(CALICO_CNI, a_pod(), changed(calico_patch(ip))))
    bare = changed(lambda p: [p["metadata"]["annotations"].pop(k) for k in POD_ANNOTATIONS])
    assert admits(spec, _status(CALICO_CNI, bare, changed(calico_patch("10.1.3.9"), bare)))
    assert admits(spec, _status(CALICO_CNI, a_pod(), a_pod()))


def test_a_token_naming_a_node_writes_only_that_nodes_pods(spec: dict[str, Any]) -> None:
    """calico-node's token is its pod's: on ws-2's pods what Calico writes is admitted, on
    cp-1's nothing; its token naming no node, nothing; a CNI token bound to a ws-2 pod (calico-node
    may request one) only on ws-2's."""
    patch = calico_patch("10.1.7.9")
    assert admits(spec, _status(CALICO_NODE, a_pod("ws-2"), changed(patch, a_pod("ws-2")), on="ws-2"))
    for user, on in ((CALICO_NODE, "ws-2"), (CALICO_NODE, None), (CALICO_CNI, "ws-2")):
        assert refused(spec, _status(user, a_pod("cp-1"), changed(patch), on)), (user, on)
    assert admits(spec, _status(CALICO_CNI, a_pod("ws-2"), changed(patch, a_pod("ws-2")), on="ws-2"))
    two = Request(CALICO_NODE, SA_GROUPS, "UPDATE", "pods", "status", changed(patch, a_pod("ws-2")), a_pod("ws-2"),
                  {NODE_NAME_EXTRA: ("ws-2", "cp-1")})
    assert refused(spec, two)


def test_calicos_accounts_create_no_pod(spec: dict[str, Any]) -> None:
    for user, on in ((CALICO_CNI, None), (CALICO_NODE, "ws-2")):
        create = Request(user, SA_GROUPS, "CREATE", "pods", "", a_pod("ws-2"), None, {NODE_NAME_EXTRA: (on,)} if on else None)
        assert refused(spec, create), user

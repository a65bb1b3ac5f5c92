"""The protected placement labels: only the program's admin identity may set, change or remove a
`hybrid-ai.node-restriction.kubernetes.io/` label of a Node (status subresource included), and
nobody changes a pod's labels through pods/status. The rendered policy is evaluated (CEL) for
the requests that matter; the real API server's evaluation is the lab's (kube-apiserver)."""

from __future__ import annotations

from typing import Any

import pytest

from components.cluster.label_guard import POLICY_NAME
from components.kit.kube import INGRESS_LABEL, LOCATION_LABEL
from tests.support.admission import Request, admits, dev_policy, node, pod
from tests.support.helpers import deps_closure, evaluate_config, stack_config

ADMIN = ("admin", ("system:masters", "system:authenticated"))
CALICO = ("system:serviceaccount:kube-system:calico-node", ("system:serviceaccounts", "system:serviceaccounts:kube-system", "system:authenticated"))
KUBELET = ("system:node:ws-1", ("system:nodes", "system:authenticated"))
NODE_CONTROLLER = ("system:serviceaccount:kube-system:node-controller", ("system:serviceaccounts", "system:authenticated"))
WS = {"kubernetes.io/hostname": "ws-1", LOCATION_LABEL: "on-prem"}
CLOUD = {"kubernetes.io/hostname": "cp-1", LOCATION_LABEL: "cloud", INGRESS_LABEL: "true"}


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    return dev_policy(POLICY_NAME)


def _status(who: tuple[str, tuple[str, ...]], old: dict[str, Any], new: dict[str, Any], resource: str = "nodes", sub: str = "status") -> Request:
    return Request(who[0], who[1], "UPDATE", resource, sub, new, old)


@pytest.mark.parametrize("new", [
    WS | {LOCATION_LABEL: "cloud", INGRESS_LABEL: "true"},  # a workstation made a cloud ingress node
    {k: v for k, v in WS.items() if k != LOCATION_LABEL},  # removed
    WS | {"hybrid-ai.node-restriction.kubernetes.io/new": "x"},  # added, a key the program does not use
])
@pytest.mark.parametrize("sub", ["status", ""])
def test_no_one_but_the_program_changes_a_protected_node_label(spec: dict[str, Any], new: dict[str, Any], sub: str) -> None:
    for who in (CALICO, KUBELET, NODE_CONTROLLER, ("admin", ()), ("someone", ("system:masters",))):
        assert not admits(spec, _status(who, node("ws-1", WS), node("ws-1", new), sub=sub)), (who, new)
    assert admits(spec, _status(ADMIN, node("ws-1", WS), node("ws-1", new), sub=sub))


def test_removing_cloud_from_a_cloud_node_and_creating_a_node_with_it_are_refused(spec: dict[str, Any]) -> None:
    drop = {k: v for k, v in CLOUD.items() if k != LOCATION_LABEL}
    assert not admits(spec, _status(CALICO, node("cp-1", CLOUD), node("cp-1", drop)))
    assert not admits(spec, Request(*KUBELET, "CREATE", "nodes", "", node("ws-1", WS), None))
    assert admits(spec, Request(*ADMIN, "CREATE", "nodes", "", node("ws-1", WS), None))


def test_registration_status_updates_and_other_labels_pass(spec: dict[str, Any]) -> None:
    assert admits(spec, Request(*KUBELET, "CREATE", "nodes", "", node("ws-1", {"kubernetes.io/hostname": "ws-1"}), None))
    assert admits(spec, Request(*KUBELET, "CREATE", "nodes", "", node("ws-1", {}), None))
    for who in (KUBELET, NODE_CONTROLLER):
        assert admits(spec, _status(who, node("ws-1", WS), node("ws-1", WS)))
    # calico-node, with its ws-1 pod's token (calico_guard.py).
    assert admits(spec, Request(*CALICO, "UPDATE", "nodes", "status", node("ws-1", WS), node("ws-1", WS),
                                {"authentication.kubernetes.io/node-name": ("ws-1",)}))
    # Other labels: not this rule's; calico-node, which writes no label, changes none (calico_guard.py).
    for who in (KUBELET, NODE_CONTROLLER):
        assert admits(spec, _status(who, node("ws-1", WS), node("ws-1", WS | {"topology.kubernetes.io/zone": "office"})))
    assert admits(spec, _status(KUBELET, node("ws-1", {}), node("ws-1", {})))
    # The program's move off its old label keys (not under the prefix) and its own relabelling.
    assert admits(spec, _status(ADMIN, node("ws-1", WS | {"hybrid-ai/location": "on-prem"}), node("ws-1", WS), sub=""))


def test_pod_labels_do_not_change_through_pods_status(spec: dict[str, Any]) -> None:
    gpu = {"app.kubernetes.io/name": "ocr-engine"}

    def on_ws1(labels: dict[str, str], notes: dict[str, str] | None = None) -> dict[str, Any]:
        return pod("ocr", labels, notes) | {"spec": {"nodeName": "ws-1"}}
    # calico-node with its ws-1 pod's token (calico_guard.py).
    for who, extra in ((CALICO, {"authentication.kubernetes.io/node-name": ("ws-1",)}), (KUBELET, None)):
        for old, new in ((on_ws1(gpu), on_ws1({"app.kubernetes.io/name": "redis"})), (on_ws1(gpu), on_ws1({})), (on_ws1({}), on_ws1(gpu))):
            assert not admits(spec, Request(who[0], who[1], "UPDATE", "pods", "status", new, old, extra)), (who, new)
        ip = on_ws1(gpu, {"cni.projectcalico.org/podIP": "10.1.0.5/32"})
        assert admits(spec, Request(who[0], who[1], "UPDATE", "pods", "status", ip, on_ws1(gpu), extra)), who
    # A pod's own update (not status) is RBAC's business, not this policy's.
    assert admits(spec, _status(CALICO, pod("ocr", gpu), pod("ocr", {}), "pods", sub=""))


def test_the_policy_is_applied_before_any_label_and_placement_waits_for_it() -> None:
    ev = evaluate_config(stack_config("dev"))
    binding = ev.by_name("cluster-label-policy-binding").urn
    for n in ("receipt", "interface", "ws-1"):
        assert binding in deps_closure(ev, ev.by_name(f"cluster-{n}-labels").urn), n
    assert binding in deps_closure(ev, ev.by_name("ingress-traefik").urn)


def test_no_node_creates_a_pod_not_even_a_mirror_pod(spec: dict[str, Any]) -> None:
    """NodeRestriction lets a kubelet create mirror pods bound to itself with any labels, in any
    namespace: a workstation's static pod labelled `app.kubernetes.io/name: receipt-api` would
    join that Service's endpoints. MicroK8s runs no static pod, so no node creates a pod."""
    mirror = pod("receipt-api-ws-1", {"app.kubernetes.io/name": "receipt-api"}, {"kubernetes.io/config.mirror": "x"})
    assert not admits(spec, Request(*KUBELET, "CREATE", "pods", "", mirror, None))
    # Controllers do (Calico's accounts none: tests/cluster/test_calico_pod_guard.py).
    for who in (ADMIN, *((f"system:serviceaccount:kube-system:{c}", ("system:serviceaccounts", "system:authenticated"))
                         for c in ("replicaset-controller", "daemon-set-controller"))):
        assert admits(spec, Request(who[0], who[1], "CREATE", "pods", "", mirror, None)), who

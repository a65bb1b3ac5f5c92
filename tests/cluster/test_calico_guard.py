"""calico-node changes on a Node only what Calico writes (components/cluster/calico_guard.py),
on the Node its token is bound to: its `projectcalico.org/` annotations (an update through
`nodes/status`) and the `NetworkUnavailable` condition (a status patch). Its token is on every
workstation; anything else (another Node at all; its own Node's addresses, kubelet port,
capacity, Ready) is refused, and every other identity is unaffected. The rendered policy is evaluated (CEL); the real API server's answer is
tests/kube/test_e2e_kube_llm.py's."""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from typing import Any

import pytest

from components.cluster.calico_guard import CALICO_NODE, NODE_NAME_EXTRA, NOT_HELD, STATUS_FIELDS
from components.cluster.label_guard import POLICY_NAME
from tests.support.admission import Request, admits, dev_policy, refused
from tests.support.helpers import PROJECT

CALICO = (CALICO_NODE, ("system:serviceaccounts", "system:serviceaccounts:kube-system", "system:authenticated"))
KUBELET = ("system:node:ws-2", ("system:nodes", "system:authenticated"))
NODE_CONTROLLER = ("system:serviceaccount:kube-system:node-controller", ("system:serviceaccounts", "system:authenticated"))
ADMIN = ("admin", ("system:masters", "system:authenticated"))
Node = dict[str, Any]


def _condition(kind: str, status: str, reason: str, beat: str = "2026-12-07T23:00:00Z") -> dict[str, str]:
    return {"type": kind, "status": status, "reason": reason, "message": reason,
            "lastHeartbeatTime": beat, "lastTransitionTime": "2026-12-07T20:00:00Z"}


def a_node() -> Node:
    """ws-2's Node as its kubelet and Calico leave it (the fields the 1.32 kubelet posts)."""
    resources = {"cpu": "8", "memory": "32780000Ki", "pods": "110", "ephemeral-storage": "100000000Ki"}
    return {
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": "ws-2", "labels": {"kubernetes.io/hostname": "ws-2", "kubernetes.io/os": "linux"},
                     "annotations": {"node.alpha.kubernetes.io/ttl": "0", "projectcalico.org/IPv4VXLANTunnelAddr": "10.1.7.0",
                                     "projectcalico.org/VXLANTunnelMACAddr": "66:0e:3a:1c:2b:9d"}},
        "spec": {"taints": [{"key": "example.com/gpu", "value": "true", "effect": "NoSchedule"}]},
        "status": {
            "capacity": resources, "allocatable": resources,
            "conditions": [_condition("MemoryPressure", "False", "KubeletHasSufficientMemory"),
                           _condition("Ready", "True", "KubeletReady")],
            "addresses": [{"type": "InternalIP", "address": "100.64.0.12"}, {"type": "Hostname", "address": "ws-2"}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": {"kubeletVersion": "v1.32.13", "kubeProxyVersion": "v1.32.13", "osImage": "Ubuntu 24.04 LTS",
                         "containerRuntimeVersion": "containerd://1.7.29", "architecture": "amd64", "operatingSystem": "linux"},
            "images": [{"names": ["docker.io/calico/node:v3.28.1"], "sizeBytes": 115000000}],
        },
    }


def changed(edit: Callable[[Node], object]) -> Node:
    new = a_node()
    edit(new)
    return new


def network(status: str) -> Callable[[Node], object]:
    reason = "CalicoIsUp" if status == "False" else "CalicoIsDown"  # node/pkg/lifecycle/utils @ v3.28.1
    return lambda n: n["status"]["conditions"].append(_condition("NetworkUnavailable", status, reason, "2026-12-07T23:05:00Z"))


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    return dev_policy(POLICY_NAME)



def _update(who: tuple[str, tuple[str, ...]], old: Node, new: Node, sub: str = "status", on: str | None = "ws-2") -> Request:
    """`who` updates ws-2's Node; calico-node with the token of its pod on node `on`."""
    extra = {NODE_NAME_EXTRA: (on,)} if who == CALICO and on else None
    return Request(who[0], who[1], "UPDATE", "nodes", sub, new, old, extra)


EDITS: dict[str, Callable[[Node], object]] = {
    "another node's InternalIP": lambda n: n["status"]["addresses"].__setitem__(0, {"type": "InternalIP", "address": "100.64.0.11"}),
    "an address added": lambda n: n["status"]["addresses"].append({"type": "ExternalIP", "address": "203.0.113.9"}),
    "the addresses removed": lambda n: n["status"].pop("addresses"),
    "the kubelet port": lambda n: n["status"]["daemonEndpoints"]["kubeletEndpoint"].__setitem__("Port", 10251),
    "capacity": lambda n: n["status"]["capacity"].__setitem__("nvidia.com/gpu", "8"),
    "allocatable": lambda n: n["status"].__setitem__("allocatable", {"cpu": "0", "pods": "0"}),
    "Ready": lambda n: n["status"]["conditions"].__setitem__(1, _condition("Ready", "False", "KubeletNotReady")),
    "Ready removed": lambda n: n["status"]["conditions"].pop(1),
    "another condition added": lambda n: n["status"]["conditions"].append(_condition("DiskPressure", "True", "x")),
    "volumes in use": lambda n: n["status"].__setitem__("volumesInUse", ["kubernetes.io/csi/x^y"]),
    "a label": lambda n: n["metadata"]["labels"].__setitem__("topology.kubernetes.io/zone", "cloud-a"),
    "an annotation not Calico's": lambda n: n["metadata"]["annotations"].__setitem__("node.alpha.kubernetes.io/ttl", "30"),
    "an annotation not Calico's removed": lambda n: n["metadata"]["annotations"].pop("node.alpha.kubernetes.io/ttl"),
    "a finalizer": lambda n: n["metadata"].__setitem__("finalizers", ["example.com/hold"]),
    "a taint (spec)": lambda n: n["spec"].pop("taints"),
}


@pytest.mark.parametrize("what", sorted(EDITS))
@pytest.mark.parametrize("sub", ["status", ""])
def test_calico_node_changes_nothing_of_a_node_but_what_calico_writes(spec: dict[str, Any], what: str, sub: str) -> None:
    new = changed(EDITS[what])
    assert new != a_node()
    assert refused(spec, _update(CALICO, a_node(), new, sub)), what
    # The same change along with what Calico does write is refused too.
    network("False")(new)
    new["metadata"]["annotations"]["projectcalico.org/IPv4VXLANTunnelAddr"] = "10.1.9.0"
    assert refused(spec, _update(CALICO, a_node(), new, sub)), what
    # The kubelet (its own Node), the node lifecycle controller and the program are not checked.
    for who in (KUBELET, NODE_CONTROLLER, ADMIN):
        assert admits(spec, _update(who, a_node(), changed(EDITS[what]), sub)), (who, what)


@pytest.mark.parametrize("status", ["False", "True"])
def test_calico_node_sets_network_unavailable_on_a_node(spec: dict[str, Any], status: str) -> None:
    """What SetNodeNetworkUnavailableCondition's status patch leaves: the condition added, or
    changed in place (a strategic merge by `type`)."""
    assert admits(spec, _update(CALICO, a_node(), changed(network(status))))
    was = changed(network("True" if status == "False" else "False"))
    now = copy.deepcopy(was)
    now["status"]["conditions"][2] = changed(network(status))["status"]["conditions"][2]
    assert admits(spec, _update(CALICO, was, now)) and admits(spec, _update(CALICO, now, now))


def test_calico_node_writes_its_annotations_through_the_status_update(spec: dict[str, Any]) -> None:
    """libcalico-go's Node update (UpdateStatus): the Node as read, its projectcalico.org/
    annotations set or removed."""
    def calico(n: Node) -> None:
        notes = n["metadata"]["annotations"]
        notes["projectcalico.org/IPv4VXLANTunnelAddr"] = "10.1.9.0"
        notes.pop("projectcalico.org/VXLANTunnelMACAddr")
        notes["projectcalico.org/kube-labels"] = '{"kubernetes.io/hostname":"ws-2"}'
    assert admits(spec, _update(CALICO, a_node(), changed(calico)))
    bare = changed(lambda n: n["metadata"].pop("annotations"))
    assert admits(spec, _update(CALICO, bare, changed(lambda n: n["metadata"].__setitem__(
        "annotations", {"projectcalico.org/IPv4VXLANTunnelAddr": "10.1.7.0"}))))
    assert admits(spec, _update(CALICO, a_node(), changed(lambda n: n["metadata"]["annotations"].__setitem__(
        "node.alpha.kubernetes.io/ttl", "0"))))  # unchanged
    nothing = changed(lambda n: n.pop("status"))
    assert admits(spec, _update(CALICO, nothing, nothing))
    assert refused(spec, _update(CALICO, nothing, a_node())) and refused(spec, _update(CALICO, a_node(), nothing))


def test_calico_node_creates_no_node(spec: dict[str, Any]) -> None:
    assert refused(spec, Request(*CALICO, "CREATE", "nodes", "", a_node(), None, {NODE_NAME_EXTRA: ("ws-2",)}))


def test_calico_node_touches_no_node_but_its_own(spec: dict[str, Any]) -> None:
    """Root on ws-1 holds the token of ws-1's calico-node pod: not even what Calico writes may it
    write on ws-2; nor with a token bound to no pod's node."""
    up = changed(network("False"))
    note = changed(lambda n: n["metadata"]["annotations"].__setitem__("projectcalico.org/IPv4VXLANTunnelAddr", "10.1.9.0"))
    for new in (up, note, a_node()):
        assert admits(spec, _update(CALICO, a_node(), new))
        for on in ("ws-1", None):
            assert refused(spec, _update(CALICO, a_node(), new, on=on)), on
    assert refused(spec, _update(CALICO, a_node(), changed(EDITS["another node's InternalIP"]), on="ws-1"))
    two = Request(*CALICO, "UPDATE", "nodes", "status", up, a_node(), {NODE_NAME_EXTRA: ("ws-2", "ws-1")})
    assert refused(spec, two)


def test_every_node_status_field_is_kept() -> None:
    """STATUS_FIELDS is NodeStatus of the API the policy runs against, `conditions` aside: a
    field left out would be one calico-node could rewrite (the lab's kube-apiserver, built at
    the pinned version, is asked in tests/kube/test_e2e_kube_llm.py)."""
    gomod = (PROJECT / "engine" / "kubernetes" / "go.mod").read_text()
    assert re.search(r"^require k8s\.io/kubernetes v1\.32\.\d+$", gomod, re.M), "a new Kubernetes: check NodeStatus's fields"
    fields = {"capacity", "allocatable", "phase", "conditions", "addresses", "daemonEndpoints", "nodeInfo", "images",
              "volumesInUse", "volumesAttached", "config", "runtimeHandlers", "features"}  # k8s.io/api v0.32.13 core/v1 NodeStatus
    assert set(STATUS_FIELDS) | set(NOT_HELD) == fields - {"conditions"} and not set(STATUS_FIELDS) & set(NOT_HELD)
    assert set(a_node()["status"]) <= fields


def test_what_calicos_client_drops_from_a_node_it_writes_back_is_not_held(spec: dict[str, Any]) -> None:
    """Calico 3.28.1 builds on k8s.io/api v0.28.12: its Node update sends back the Node it read
    without the fields that API does not know (runtimeHandlers, features, nodeInfo.swap), which
    a 1.30+ kubelet posts; its annotation update must still pass."""
    old = a_node()
    old["status"]["runtimeHandlers"] = [{"name": "nvidia", "features": {"recursiveReadOnlyMounts": False}}]
    old["status"]["features"] = {"supplementalGroupsPolicy": True}
    old["status"]["nodeInfo"]["swap"] = {"capacity": 0}
    new = a_node()
    new["metadata"]["annotations"]["projectcalico.org/IPv4VXLANTunnelAddr"] = "10.1.9.0"
    assert admits(spec, _update(CALICO, old, new))


def test_other_identities_and_other_resources_are_unaffected(spec: dict[str, Any]) -> None:
    heartbeat = changed(lambda n: n["status"]["conditions"].__setitem__(1, _condition("Ready", "True", "KubeletReady", "2026-12-07T23:00:10Z")))
    assert admits(spec, _update(KUBELET, a_node(), heartbeat))
    assert admits(spec, Request(*KUBELET, "CREATE", "nodes", "", a_node(), None))
    # Calico's pod status patches: tests/cluster/test_calico_pod_guard.py.

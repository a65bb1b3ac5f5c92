"""What Calico's service accounts may change: a Node's Calico annotations and NetworkUnavailable, a pod's IP annotations.

Nodes. calico-node's service account, whose token is on every node (workstations included), may
patch and update `nodes/status` of any Node (MicroK8s 1.32's calico.yaml, Calico 3.28.1), and a
status update keeps the metadata as sent (the Node status strategy resets only `spec`). Calico
itself writes two things there, on its own node only (`NODENAME` is its pod's `spec.nodeName`;
libcalico-go `resources/node.go` and node `lifecycle/utils` @ v3.28.1):
  - an update of the whole Node through `nodes/status` whose only changes are
    `projectcalico.org/*` annotations (tunnel addresses, VXLAN MACs, WireGuard keys, its labels);
  - a strategic-merge patch of `nodes/status` that sets the `NetworkUnavailable` condition
    (False once its node's network is up, True when it shuts down).
It may not update `nodes` itself (get, list and watch only). Its token is its pod's, and a
pod's token names the pod's node (`authentication.kubernetes.io/node-name` in the user's extra,
always in 1.32). So these validations of the `hybrid-ai-protected-labels` policy admit from
calico-node only an UPDATE of the Node its token is bound to that leaves its spec, labels,
finalizers, owner references, annotations outside `projectcalico.org/`, every status field but
`conditions` and those its client drops (`NOT_HELD`), and every condition but `NetworkUnavailable`
as they were: root on a workstation reaches no other Node through it, and on its own only what
its kubelet could do anyway.

Pods. calico-node and `calico-cni-plugin` (whose token calico-node requests, bound to no pod, and
writes into the CNI plugin's kubeconfig on every host) may patch `pods/status` of any pod, and a
pod status update may change the pod's IPs and conditions (Service endpoints follow them). Calico
writes there only the CNI plugin's strategic-merge patch of three annotations (`podIP`, `podIPs`,
`containerID` under `cni.projectcalico.org/`; libcalico-go `resources/workloadendpoint.go`);
neither may write `pods` itself. So from either only an UPDATE that changes nothing of the pod but
those three annotations is admitted; a token that names a node (calico-node's always does) only
on a pod of that node. Every other identity (the kubelets, the control plane) is not checked by
these validations.
"""

from __future__ import annotations

from typing import Any

CALICO_NODE = "system:serviceaccount:kube-system:calico-node"
CALICO_CNI = "system:serviceaccount:kube-system:calico-cni-plugin"
CALICO_PREFIX = "projectcalico.org/"
CALICO_CONDITION = "NetworkUnavailable"
# NodeStatus fields Calico's client does not know, in whole or in part (k8s.io/api v0.28.12 in
# Calico 3.28.1's go.mod): its update of the Node it read drops them, so holding them equal would
# refuse Calico wherever a kubelet posts them (runtimeHandlers from 1.30, features from 1.31,
# nodeInfo.swap from 1.33, a containerd 2 runtime's). They describe the node and grant nothing.
NOT_HELD = ("nodeInfo", "runtimeHandlers", "features")
# Every other NodeStatus field of Kubernetes 1.32 but `conditions` (k8s.io/api v0.32.13 core/v1).
STATUS_FIELDS = ("capacity", "allocatable", "phase", "addresses", "daemonEndpoints", "images",
                 "volumesInUse", "volumesAttached", "config")


def _same(new: str, old: str, field: str) -> str:
    """An optional field unchanged: absent in both, or present in both and equal (reading an
    absent field is an evaluation error, hence has())."""
    return f"(has({new}.{field}) == has({old}.{field}) && (!has({new}.{field}) || {new}.{field} == {old}.{field}))"


def _kept_but(new: str, old: str, keep: str) -> str:
    """Every element of list `new` that `keep` does not exempt (`c` in it) is one of `old`'s."""
    return f"(!has({new}) || {new}.all(c, {keep} || (has({old}) && c in {old})))"


_A, _OA = "object.metadata.annotations", "oldObject.metadata.annotations"


def _metadata(exempt: str) -> str:
    """Labels, finalizers, owner references and every annotation whose key `k` `exempt` does not
    name as they were."""
    annotations = (
        f"(!has({_A}) || {_A}.all(k, {exempt} || (has({_OA}) && k in {_OA} && {_OA}[k] == {_A}[k]))) && "
        f"(!has({_OA}) || {_OA}.all(k, {exempt} || (has({_A}) && k in {_A})))"
    )
    return " && ".join([*(_same("object.metadata", "oldObject.metadata", f) for f in ("labels", "finalizers", "ownerReferences")),
                        annotations])


_METADATA = _metadata(f"k.startsWith('{CALICO_PREFIX}')")
_OTHER = f"c.type == '{CALICO_CONDITION}'"
_STATUS = (
    "has(object.status) == has(oldObject.status) && (!has(object.status) || ("
    + " && ".join(_same("object.status", "oldObject.status", f) for f in STATUS_FIELDS)
    + f" && {_kept_but('object.status.conditions', 'oldObject.status.conditions', _OTHER)}"
    + f" && {_kept_but('oldObject.status.conditions', 'object.status.conditions', _OTHER)}))"
)


NODE_NAME_EXTRA = "authentication.kubernetes.io/node-name"
_E = "request.userInfo.extra"
_BOUND = f"has({_E}) && '{NODE_NAME_EXTRA}' in {_E} && {_E}['{NODE_NAME_EXTRA}'] == [object.metadata.name]"
_CALICO_ON_NODES = f"request.userInfo.username != '{CALICO_NODE}' || request.resource.resource != 'nodes' || "

# What the CNI plugin writes on a pod (libcalico-go conversion/constants.go @ v3.28.1); the other
# `cni.projectcalico.org/` annotations (ipAddrs, ipAddrsNoIpam, floatingIPs, allowedSourcePrefixes,
# hwAddr...) are the pod owner's requests, which Calico reads and never writes.
POD_ANNOTATIONS = ("cni.projectcalico.org/podIP", "cni.projectcalico.org/podIPs", "cni.projectcalico.org/containerID")
_CALICO_ON_PODS = (f"!(request.userInfo.username in ['{CALICO_NODE}', '{CALICO_CNI}']) || request.resource.resource != 'pods' || "
                   "request.operation == 'UPDATE' && ")
# A token that names a node (a pod's: calico-node's always) writes only pods on that node; the
# CNI plugin's names none. calico-node's naming none is refused, as on Nodes.
_POD_BOUND = (f"((has({_E}) && '{NODE_NAME_EXTRA}' in {_E}) ? "
              f"(has(object.spec.nodeName) && {_E}['{NODE_NAME_EXTRA}'] == [object.spec.nodeName]) : "
              f"request.userInfo.username != '{CALICO_NODE}')")
_CALICO_KEYS = "[" + ", ".join(f"'{k}'" for k in POD_ANNOTATIONS) + "]"
_POD_KEPT = " && ".join([_same("object", "oldObject", "spec"), _same("object", "oldObject", "status"), _metadata(f"k in {_CALICO_KEYS}")])


def calico_validations() -> list[dict[str, Any]]:
    """The validations (for a policy matching `nodes`, `nodes/status` and `pods/status`)."""
    return [
        {"expression": f"{_CALICO_ON_NODES}(request.operation == 'UPDATE' && {_BOUND})",
         "message": "calico-node changes only the Node its token is bound to (its pod's node)", "reason": "Forbidden"},
        {"expression": f"{_CALICO_ON_NODES}(request.operation == 'UPDATE' && {_same('object', 'oldObject', 'spec')} && "
                       f"{_METADATA} && ({_STATUS}))",
         "message": f"calico-node may change only {CALICO_PREFIX} annotations and the {CALICO_CONDITION} condition of a Node",
         "reason": "Forbidden"},
        {"expression": f"{_CALICO_ON_PODS}{_POD_BOUND}",
         "message": "Calico's accounts change only pods on the node their token is bound to (calico-node: its pod's node)",
         "reason": "Forbidden"},
        {"expression": f"{_CALICO_ON_PODS}{_POD_KEPT}",
         "message": f"Calico's accounts may change only Calico's pod IP annotations ({', '.join(POD_ANNOTATIONS)}) of a pod, "
                    "not its status, spec, labels or other annotations",
         "reason": "Forbidden"},
    ]

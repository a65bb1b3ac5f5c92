"""The admission policy that keeps the program's placement labels the program's own.

NodeRestriction stops a kubelet from setting `*.node-restriction.kubernetes.io` labels, but not
any other identity: calico-node, whose token is on every node, may patch `nodes/status` of any
Node and `pods/status` of any pod (MicroK8s 1.32's calico.yaml), and a status update keeps the
object's labels as sent (k8s 1.32 node and pod status strategies reset only spec). So a
ValidatingAdmissionPolicy refuses, from anyone but the program's admin identity (`microk8s
config`'s x509 `CN=admin,O=system:masters`, which the provider and the host scripts' `microk8s
kubectl` use):
  - any change to a `hybrid-ai.node-restriction.kubernetes.io/` label of a Node (create, update,
    status; set, changed or removed);
  - any label change through `pods/status`;
  - any pod a node creates: NodeRestriction lets a kubelet create mirror pods of its static pods,
    bound to itself, with any labels in any namespace, so a workstation could put a pod behind a
    cloud-only Service. MicroK8s runs no static pod; the kubelets' own pods come from the API;
  - from calico-node, any change to a Node but what Calico writes on its own, and from calico-node
    and calico-cni-plugin any change to a pod but Calico's IP annotations (calico_guard.py).
A kubelet registering its Node sets none of them (NodeRestriction forbids it) and status
updates that leave labels alone pass, so node registration and the node lifecycle controller
are unaffected. Applied as soon as the provider exists; the node label patches and everything
placed by them wait for its binding.
"""

from __future__ import annotations

from typing import Any

import pulumi
from pulumi_kubernetes.admissionregistration.v1 import ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding
from pulumi_kubernetes.provider import Provider

from components.cluster.calico_guard import calico_validations
from components.kit.kube import NODE_LABEL_PREFIX

POLICY_NAME = "hybrid-ai-protected-labels"
ADMIN_USER = "admin"
ADMIN_GROUP = "system:masters"

# CEL, standard macros and string functions only. Labels may be absent (an empty map is omitted).
_P = f"'{NODE_LABEL_PREFIX}'"
_NEW_NODE_LABELS_KEPT = (
    f"!has(object.metadata.labels) || object.metadata.labels.all(k, !k.startsWith({_P}) || "
    "(request.operation != 'CREATE' && has(oldObject.metadata.labels) && k in oldObject.metadata.labels && "
    "oldObject.metadata.labels[k] == object.metadata.labels[k]))"
)
_OLD_NODE_LABELS_KEPT = (
    f"request.operation == 'CREATE' || !has(oldObject.metadata.labels) || oldObject.metadata.labels.all(k, !k.startsWith({_P}) || "
    "(has(object.metadata.labels) && k in object.metadata.labels))"
)
_POD_LABELS_KEPT = (
    "has(object.metadata.labels) == has(oldObject.metadata.labels) && "
    "(!has(object.metadata.labels) || object.metadata.labels == oldObject.metadata.labels)"
)


def policy_spec() -> dict[str, Any]:
    """The ValidatingAdmissionPolicy's spec (admissionregistration.k8s.io/v1, GA in 1.30)."""
    return {
        "failurePolicy": "Fail",
        "matchConstraints": {"resourceRules": [
            {"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"], "resources": ["nodes", "nodes/status"]},
            {"apiGroups": [""], "apiVersions": ["v1"], "operations": ["UPDATE"], "resources": ["pods/status"]},
            {"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["pods"]},
        ]},
        # Everyone but the program's admin identity is checked. Pods: UPDATE is pods/status only,
        # CREATE the pods themselves (an empty subResource is absent from the request: no test on it).
        "matchConditions": [{
            "name": "not-the-program",
            "expression": f"!(request.userInfo.username == '{ADMIN_USER}' && has(request.userInfo.groups) && "
                          f"'{ADMIN_GROUP}' in request.userInfo.groups)",
        }],
        "validations": [
            {"expression": f"request.resource.resource != 'nodes' || (({_NEW_NODE_LABELS_KEPT}) && ({_OLD_NODE_LABELS_KEPT}))",
             "message": f"labels under {NODE_LABEL_PREFIX} are set by the hybrid-ai program only", "reason": "Forbidden"},
            {"expression": f"request.resource.resource != 'pods' || request.operation != 'UPDATE' || ({_POD_LABELS_KEPT})",
             "message": "pod labels cannot be changed through pods/status", "reason": "Forbidden"},
            {"expression": "request.resource.resource != 'pods' || request.operation != 'CREATE' || "
                           "!(has(request.userInfo.groups) && 'system:nodes' in request.userInfo.groups)",
             "message": "nodes do not create pods here (no static pods): a mirror pod could join any Service", "reason": "Forbidden"},
            *calico_validations(),
        ],
    }


def protected_labels(name: str, parent: pulumi.Resource | None, provider: Provider) -> pulumi.Output[str]:
    """`<name>-label-policy` and `<name>-label-policy-binding`; resolves once the binding exists."""
    opts = pulumi.ResourceOptions(parent=parent, provider=provider)
    policy = ValidatingAdmissionPolicy(f"{name}-label-policy", metadata={"name": POLICY_NAME}, spec=policy_spec(), opts=opts)
    binding = ValidatingAdmissionPolicyBinding(
        f"{name}-label-policy-binding",
        metadata={"name": POLICY_NAME},
        spec={"policyName": policy.metadata.name, "validationActions": ["Deny"]},
        opts=opts,
    )
    return binding.metadata.name

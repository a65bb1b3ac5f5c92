"""Only the stack's own cluster hosts may register a Node (`known-nodes-apply.sh`, a policy).

A kubelet's client certificate is what cluster-agent signed at its join, valid for 10 years
and never revoked (MicroK8s 1.32 `sign_certificate`: `openssl x509 -req -days 3650`; the API
server checks no revocation list), and NodeRestriction lets `system:node:<n>` create Node `<n>`.
So a workstation removed from the stack (stolen, say) could register its Node again wherever it
still reaches an API server, and DaemonSets' pods there would hand it their service-account
tokens. A ConfigMap on the seed, written whole over SSH as the program's admin identity, lists
the stack's cluster hosts (its keys), and a ValidatingAdmissionPolicy bound to it refuses a Node's
creation or update (status included) by any node identity whose name is not among them. A
worker's Node is deleted by its drain on the control plane, the first of its removal steps, so
a host that refuses its own `leave` does not keep it; a step replaced (its name still listed)
deletes no live node's Node. The list is written before any
node's registration and join (they wait for it), and on a removal before the node's Node is
deleted (Pulumi deletes after its updates); without the ConfigMap no node registers at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pulumi
from pulumi_command import remote
from pulumi_kubernetes.admissionregistration.v1 import ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding
from pulumi_kubernetes.provider import Provider

from components.hosts.ssh import SshTarget, command_options
from components.kit import shell
from components.kit.outputs import after

CONFIGMAP = "hybrid-ai-known-nodes"
NAMESPACE = "kube-system"
POLICY_NAME = "hybrid-ai-known-nodes"
KNOWN_LIST = {"CONFIGMAP": CONFIGMAP, "NAMESPACE": NAMESPACE}
"""The list's parameters, for the host scripts that read it (components/kit/scripts/known-nodes.sh)."""


def known_nodes(name: str, parent: pulumi.Resource, target: SshTarget, nodes: Sequence[str]) -> pulumi.Output[str]:
    """`<name>-known-nodes` on the seed: the ConfigMap of the stack's cluster hosts; resolves
    once written (what each registration and join waits for)."""
    params = {"NODE_NAMES": " ".join(nodes), "CONFIGMAP": CONFIGMAP, "NAMESPACE": NAMESPACE}
    step = remote.Command(
        f"{name}-known-nodes",
        connection=target.connection,
        create=shell.remote_command("known-nodes-apply.sh", params, sudo=target.sudo),
        delete=shell.remote_command("known-nodes-remove.sh", {"CONFIGMAP": CONFIGMAP, "NAMESPACE": NAMESPACE}, sudo=target.sudo),
        add_previous_output_in_env=False,
        # Replaced (say, after the ConfigMap was deleted by hand): delete, then write, so the
        # old step's delete does not remove what the new one wrote (nothing would register).
        opts=pulumi.ResourceOptions.merge(command_options(parent), pulumi.ResourceOptions(delete_before_replace=True)),
    )
    # Its ID, not its output: known in a preview of an in-place update, so a host added or
    # removed does not show every other node's steps (and what waits for them) as changing.
    return step.id


POLICIES = {
    # Creation: no list, no Node (a missing ConfigMap must not open registration to anyone).
    POLICY_NAME: (["CREATE"], ["nodes"], "Deny"),
    # Updates, status included: a kubelet left running on a removed host must not keep its Node
    # alive (its DaemonSet pods, their tokens) while it still exists. With no list, updates pass:
    # the params are looked up before the match conditions (docs/upstream.md), so a Deny would
    # refuse every Node update, the node lifecycle controller's too, until the list is written.
    f"{POLICY_NAME}-updates": (["UPDATE"], ["nodes", "nodes/status"], "Allow"),
}
"""Each policy's name: the operations and resources it checks, and what its binding does when
the ConfigMap is missing (parameterNotFoundAction)."""


def policy_spec(operations: list[str], resources: list[str]) -> dict[str, Any]:
    """A ValidatingAdmissionPolicy's spec: a Node written by a node identity must be listed."""
    return {
        "failurePolicy": "Fail",
        "paramKind": {"apiVersion": "v1", "kind": "ConfigMap"},
        "matchConstraints": {"resourceRules": [
            {"apiGroups": [""], "apiVersions": ["v1"], "operations": operations, "resources": resources},
        ]},
        "matchConditions": [{
            "name": "a-node-identity",
            "expression": "has(request.userInfo.groups) && 'system:nodes' in request.userInfo.groups",
        }],
        "validations": [{
            "expression": "has(params.data) && object.metadata.name in params.data",
            "message": "this node is not one of the stack's cluster hosts: a host removed from the stack registers or updates no Node",
            "reason": "Forbidden",
        }],
    }


def known_nodes_policy(name: str, parent: pulumi.Resource, provider: Provider, known: pulumi.Output[str]) -> list[pulumi.Output[str]]:
    """`<name>-known-nodes-policy` (and `-updates-policy`) and their bindings to the ConfigMap
    (bound once it is written)."""
    opts = pulumi.ResourceOptions(parent=parent, provider=provider)
    bound = []
    for policy_name, (operations, resources, not_found) in POLICIES.items():
        role = policy_name.removeprefix("hybrid-ai-")
        policy = ValidatingAdmissionPolicy(f"{name}-{role}-policy", metadata={"name": policy_name}, spec=policy_spec(operations, resources),
                                           opts=opts)
        binding = ValidatingAdmissionPolicyBinding(
            f"{name}-{role}-policy-binding",
            metadata={"name": policy_name},
            spec={"policyName": policy.metadata.name, "validationActions": ["Deny"],
                  "paramRef": {"name": after(CONFIGMAP, known), "namespace": NAMESPACE, "parameterNotFoundAction": not_found}},
            opts=opts,
        )
        bound.append(binding.metadata.name)
    return bound

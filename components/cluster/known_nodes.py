"""Only the stack's own cluster hosts may register a Node (`known-nodes-apply.sh`, a policy).

A kubelet's client certificate is what cluster-agent signed at its join, valid for 10 years
and never revoked (MicroK8s 1.32 `sign_certificate`: `openssl x509 -req -days 3650`; the API
server checks no revocation list), and NodeRestriction lets `system:node:<n>` create Node `<n>`.
So a workstation removed from the stack (stolen, say) could register its Node again wherever it
still reaches an API server, and DaemonSets' pods there would hand it their service-account
tokens. A ConfigMap on the seed, written whole over SSH as the program's admin identity, lists
the stack's cluster hosts (its keys), and a ValidatingAdmissionPolicy bound to it refuses a Node's
creation by any node identity whose name is not among them. The list is written before any
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


def policy_spec() -> dict[str, Any]:
    """The ValidatingAdmissionPolicy's spec: a Node created by a node identity must be listed."""
    return {
        "failurePolicy": "Fail",
        "paramKind": {"apiVersion": "v1", "kind": "ConfigMap"},
        "matchConstraints": {"resourceRules": [
            {"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["nodes"]},
        ]},
        "matchConditions": [{
            "name": "a-node-identity",
            "expression": "has(request.userInfo.groups) && 'system:nodes' in request.userInfo.groups",
        }],
        "validations": [{
            "expression": "has(params.data) && object.metadata.name in params.data",
            "message": "this node is not one of the stack's cluster hosts: a host removed from the stack registers no Node",
            "reason": "Forbidden",
        }],
    }


def known_nodes_policy(name: str, parent: pulumi.Resource, provider: Provider, known: pulumi.Output[str]) -> pulumi.Output[str]:
    """`<name>-known-nodes-policy` and its binding to the ConfigMap (bound once it is written)."""
    opts = pulumi.ResourceOptions(parent=parent, provider=provider)
    policy = ValidatingAdmissionPolicy(f"{name}-known-nodes-policy", metadata={"name": POLICY_NAME}, spec=policy_spec(), opts=opts)
    binding = ValidatingAdmissionPolicyBinding(
        f"{name}-known-nodes-policy-binding",
        metadata={"name": POLICY_NAME},
        spec={"policyName": policy.metadata.name, "validationActions": ["Deny"],
              "paramRef": {"name": after(CONFIGMAP, known), "namespace": NAMESPACE, "parameterNotFoundAction": "Deny"}},
        opts=opts,
    )
    return binding.metadata.name

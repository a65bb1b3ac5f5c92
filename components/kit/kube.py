"""Kubernetes-shaped building blocks (camelCase, as in YAML), shared by the workload components.

Manifests are plain dicts typed `Any`: pulumi_kubernetes takes them as they are, and they
read like the YAML a reviewer finds under `artifacts/kubernetes/` in the render.
"""

from __future__ import annotations

from typing import Any

import pulumi

Manifest = Any

PART_OF = "hybrid-ai"
DNS_PORTS = [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]

# The node labels the program sets (stacks/build.py) and places pods by. Under a subdomain of
# node-restriction.kubernetes.io: with the NodeRestriction admission plugin no kubelet may add,
# change or remove such a label on its own Node, at registration or later (Kubernetes 1.32
# plugin/pkg/admission/noderestriction getForbiddenLabels), so a workstation cannot attract what
# belongs on the cloud nodes by labelling itself.
NODE_LABEL_PREFIX = "hybrid-ai.node-restriction.kubernetes.io/"
SITE_LABEL = NODE_LABEL_PREFIX + "site"
LOCATION_LABEL = NODE_LABEL_PREFIX + "location"
INGRESS_LABEL = NODE_LABEL_PREFIX + "ingress"
GPU_LABEL = NODE_LABEL_PREFIX + "gpu"
GPU_MODEL_LABEL = NODE_LABEL_PREFIX + "gpu-model"
GPU_CAPACITY_LABEL = NODE_LABEL_PREFIX + "gpu-capacity"
VPN_ADDRESS_LABEL = NODE_LABEL_PREFIX + "vpn-address"
CLOUD_NODES = {LOCATION_LABEL: "cloud"}
"""The trusted nodes (cloud sites): what can read Secrets cluster-wide or create pods runs only here."""
GPU_NODES = {GPU_LABEL: "true"}
INGRESS_NODES = {INGRESS_LABEL: "true", **CLOUD_NODES}


def manifest(section: dict[str, Any]) -> Manifest:
    """A manifest section written with Kubernetes' own (camelCase) field names, as in YAML."""
    return section


def labels(name: str, component: str) -> dict[str, str]:
    """The recommended app.kubernetes.io labels."""
    return {
        "app.kubernetes.io/name": name,
        "app.kubernetes.io/instance": name,
        "app.kubernetes.io/component": component,
        "app.kubernetes.io/part-of": PART_OF,
        "app.kubernetes.io/managed-by": "pulumi",
    }


def selector(name: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": name}


def restricted_pod(uid: int) -> dict[str, Any]:
    """Pod security context that Pod Security "restricted" admits."""
    return {"runAsNonRoot": True, "runAsUser": uid, "runAsGroup": uid, "fsGroup": uid, "seccompProfile": {"type": "RuntimeDefault"}}


def restricted_container(uid: int) -> dict[str, Any]:
    return {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "runAsUser": uid,
        "runAsGroup": uid,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def namespace_metadata(name: str, pod_security: str) -> Manifest:
    """A namespace's metadata with its Pod Security level enforced (and warned about)."""
    return {"name": name, "labels": labels(name, "namespace") | {
        "pod-security.kubernetes.io/enforce": pod_security,
        "pod-security.kubernetes.io/enforce-version": "latest",
        "pod-security.kubernetes.io/warn": pod_security,
    }}


def metadata(name: str, namespace: pulumi.Input[str] | None, component: str, annotations: dict[str, str] | None = None) -> Manifest:
    meta: dict[str, Any] = {"name": name, "labels": labels(name, component)}
    if namespace is not None:
        meta["namespace"] = namespace
    if annotations:
        meta["annotations"] = annotations
    return meta


def allow_ingress(name: str, namespace: pulumi.Input[str], target: str, port: int, source: dict[str, Any]) -> Manifest:
    """A NetworkPolicy letting `source` (a NetworkPolicyPeer) reach `target` pods on `port`."""
    return {
        "metadata": metadata(name, namespace, "network-policy"),
        "spec": {
            "podSelector": {"matchLabels": selector(target)},
            "policyTypes": ["Ingress"],
            "ingress": [{"from": [source], "ports": [{"protocol": "TCP", "port": port}]}],
        },
    }


# OpenStack's metadata service, which serves a VM's user data (its SSH host key included)
# without authentication to anything on the VM: pods reach it through the node's SNAT.
CLOUD_METADATA = ("169.254.169.254/32", "fe80::a9fe:a9fe/128")


def no_cloud_metadata(namespace: pulumi.Input[str]) -> Manifest:
    """A NetworkPolicy for a namespace without default-deny: every pod's egress allowed but to the
    metadata service. (Not for a default-deny namespace: being an allow, it would open egress.)"""
    return {
        "metadata": metadata("no-cloud-metadata", namespace, "network-policy"),
        "spec": {
            "podSelector": {},
            "policyTypes": ["Egress"],
            "egress": [{"to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": [CLOUD_METADATA[0]]}},
                               {"ipBlock": {"cidr": "::/0", "except": [CLOUD_METADATA[1]]}}]}],
        },
    }

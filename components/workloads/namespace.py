"""Namespaces: the workloads' own (Pod Security "restricted", deny by default, DNS allowed), and
the open ones of the charts we install (their pods kept off the cloud metadata service)."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
from pulumi_kubernetes.core.v1 import Namespace
from pulumi_kubernetes.networking.v1 import NetworkPolicy

from components.kit.kube import DNS_PORTS, manifest, metadata, namespace_metadata, no_cloud_metadata


def open_namespace(prefix: str, name: str, pod_security: str, opts: pulumi.ResourceOptions) -> pulumi.Output[str]:
    """`<prefix>-namespace` for a chart's pods, without default-deny, and `<prefix>-no-cloud-metadata`
    keeping them off the metadata service; the namespace's name, resolving once it exists."""
    ns = Namespace(f"{prefix}-namespace", metadata=namespace_metadata(name, pod_security), opts=opts)
    namespace: pulumi.Output[str] = ns.metadata.apply(lambda m: str(m["name"]))
    NetworkPolicy(f"{prefix}-no-cloud-metadata", **no_cloud_metadata(namespace), opts=opts)
    return namespace


@dataclass
class WorkloadNamespaceArgs:
    name: str
    """Namespace name."""


class WorkloadNamespace(pulumi.ComponentResource):
    """Namespace with restricted Pod Security and a default-deny network policy."""

    name: pulumi.Output[str]
    """The namespace's name, once it exists."""

    def __init__(self, name: str, args: WorkloadNamespaceArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("hybridai:k8s:WorkloadNamespace", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        ns = Namespace(f"{name}-namespace", metadata=namespace_metadata(args.name, "restricted"), opts=child)
        self.name = ns.metadata.apply(lambda m: str(m["name"]))
        NetworkPolicy(f"{name}-default-deny", metadata=metadata("default-deny", self.name, "network-policy"), spec=manifest({
            "podSelector": {}, "policyTypes": ["Ingress", "Egress"],
        }), opts=child)
        NetworkPolicy(f"{name}-allow-dns", metadata=metadata("allow-dns", self.name, "network-policy"), spec=manifest({
            "podSelector": {},
            "policyTypes": ["Egress"],
            "egress": [{
                "to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
                        "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}],
                "ports": DNS_PORTS,
            }],
        }), opts=child)
        self.register_outputs({"name": self.name})

"""Cluster DNS that outlives an on-prem site: MicroK8s' `dns` addon runs CoreDNS as one pod with
no placement (the Deployment `kube-system/coredns`, core addons at 2d6e317), so after a drain or
a restart it may land on a workstation, and every name lookup in the cluster, the cloud side's
included, then fails while that site is offline. This patches the addon's Deployment (server-side
apply: only these fields, released on destroy) to two replicas required at cloud sites, spread
over hosts and sites, with a budget; with one cloud node that can hold it, to one replica that
prefers the cloud (required there, a drain of that node would leave cluster DNS Pending)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
from pulumi_kubernetes.apps.v1 import DeploymentPatch
from pulumi_kubernetes.meta.v1 import ObjectMetaPatchArgs
from pulumi_kubernetes.policy.v1 import PodDisruptionBudget

from components.kit.kube import SITE_LABEL, manifest, metadata
from components.kit.outputs import after

# The dns addon's objects (microk8s-core-addons addons/dns/coredns.yaml at 2d6e317).
COREDNS = "coredns"
NAMESPACE = "kube-system"
SELECTOR = {"k8s-app": "kube-dns"}


@dataclass
class ClusterDnsArgs:
    node_labels: Mapping[str, str]
    """The labels of the nodes CoreDNS belongs on (the cloud nodes)."""
    nodes: int = 2
    """How many nodes carry them and can hold CoreDNS (no taint it does not tolerate)."""
    addon_ready: Sequence[pulumi.Output[Any]] = ()
    """Resolve once the addon's Deployment exists (the seed has enabled `dns`) and those nodes
    carry their labels (else the new pods would wait Pending for them)."""


def coredns_spec(node_labels: Mapping[str, str], nodes: int) -> dict[str, Any]:
    """The fields of the addon's Deployment this program owns: two replicas required on two or
    more such nodes; one that prefers them on a single one (two there would block its drain, one
    required there would have nowhere to go while it is drained)."""
    match = {"labelSelector": {"matchLabels": dict(SELECTOR)}}
    if nodes >= 2:
        placement: dict[str, Any] = {"nodeSelector": dict(node_labels)}
    else:
        placement = {"affinity": {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{
            "weight": 100, "preference": {"matchExpressions": [
                {"key": k, "operator": "In", "values": [v]} for k, v in node_labels.items()]}}]}}}
    return {
        "replicas": 2 if nodes >= 2 else 1,
        "template": {"spec": {
            **placement,
            # Preferences, as for the models (components/workloads/pod.py): never Pending.
            "topologySpreadConstraints": [
                {"maxSkew": 1, "topologyKey": key, "whenUnsatisfiable": "ScheduleAnyway", **match}
                for key in ("kubernetes.io/hostname", SITE_LABEL)
            ],
        }},
    }


class ClusterDns(pulumi.ComponentResource):
    """CoreDNS kept at cloud sites, two replicas (one always up through drains) when two cloud nodes can hold them."""

    def __init__(self, name: str, args: ClusterDnsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("hybridai:k8s:ClusterDns", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        # patchForce: the addon's `kubectl apply` manager owns nothing we set (it sets no replicas
        # and no placement), but a hand edit would; the program's values win. The wait rides on the
        # annotation: a patch's name must be known at preview (docs/upstream.md).
        DeploymentPatch(f"{name}-coredns", metadata=ObjectMetaPatchArgs(
            name=COREDNS, namespace=NAMESPACE, annotations={"pulumi.com/patchForce": after("true", *args.addon_ready)},
        ), spec=manifest(coredns_spec(args.node_labels, args.nodes)), opts=child)
        # maxUnavailable (not minAvailable: 1): if the addon is ever re-enabled at one replica, a
        # drain of its node may still evict it.
        PodDisruptionBudget(f"{name}-pdb", metadata=metadata(COREDNS, NAMESPACE, "dns"), spec=manifest({
            "selector": {"matchLabels": dict(SELECTOR)}, "maxUnavailable": 1, "unhealthyPodEvictionPolicy": "AlwaysAllow",
        }), opts=child)
        self.register_outputs({})

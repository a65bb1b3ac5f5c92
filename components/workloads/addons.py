"""MicroK8s' own addon workloads that the trust tiers concern. The `hostpath-storage` addon runs
its provisioner as the Deployment `kube-system/hostpath-provisioner` with no placement, and its
ClusterRole creates pods in any namespace (the helper pods that make each volume's directory on
its node; microk8s-core-addons addons/hostpath-storage/storage.yaml at 2d6e317). Such a pod must
not run on a workstation: this patches the Deployment (server-side apply: only this field,
released on destroy) to the cloud nodes. Its helper pods still go wherever the volume's pod is.
So are `metrics-server` (it serves metrics.k8s.io: on a workstation it would steer every HPA)
and `calico-kube-controllers` (Calico's IPAM garbage collection and node sync)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
from pulumi_kubernetes.apps.v1 import DeploymentPatch
from pulumi_kubernetes.meta.v1 import ObjectMetaPatchArgs

from components.kit.kube import manifest
from components.kit.outputs import after

HOSTPATH_PROVISIONER = "hostpath-provisioner"
CLOUD_ADDONS = (HOSTPATH_PROVISIONER, "metrics-server", "calico-kube-controllers")
"""kube-system Deployments kept on the cloud nodes (addons metrics-server and hostpath-storage; Calico's manifest)."""
NAMESPACE = "kube-system"


@dataclass
class AddonPlacementArgs:
    node_labels: Mapping[str, str]
    """The labels of the trusted nodes (the cloud nodes)."""
    addon_ready: Sequence[pulumi.Output[Any]] = ()
    """Resolve once the addon's Deployment exists (the seed has enabled it) and those nodes carry their labels."""


class AddonPlacement(pulumi.ComponentResource):
    """The addons' pods that can create pods or steer the cluster, kept on the trusted nodes."""

    def __init__(self, name: str, args: AddonPlacementArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("hybridai:k8s:AddonPlacement", name, None, opts)
        # patchForce: the addon's `kubectl apply` sets no placement; a hand edit would lose to ours.
        # The wait rides on the annotation, not the name: pulumi-kubernetes refuses a patch whose
        # name is unknown at preview (docs/upstream.md).
        for deployment in CLOUD_ADDONS:
            DeploymentPatch(f"{name}-{deployment}", metadata=ObjectMetaPatchArgs(
                name=deployment, namespace=NAMESPACE, annotations={"pulumi.com/patchForce": after("true", *args.addon_ready)},
            ), spec=manifest({"template": {"spec": {"nodeSelector": dict(args.node_labels)}}}), opts=pulumi.ResourceOptions(parent=self))
        self.register_outputs({})

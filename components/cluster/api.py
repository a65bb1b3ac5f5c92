"""The cluster's Kubernetes API as the program uses it: one provider built from the admin
kubeconfig, and each node's labels and taints, set once the node is Ready.

MicroK8sCluster builds it from the kubeconfig it reads off the control plane. Until the whole
program runs under the real engine, `stacks/kubernetes.py` builds it from a kubeconfig given
to it (the Kubernetes layer alone, on a cluster that exists)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
from pulumi_kubernetes.provider import Provider

from components.cluster.label_guard import protected_labels
from components.cluster.node_meta import NodeTaint, label_and_taint
from components.hosts.ssh import SshTarget
from components.kit.outputs import after


@dataclass(frozen=True)
class NodeMarks:
    """What the program sets on a node."""

    name: str
    labels: Mapping[str, str] = field(default_factory=dict)
    taints: Sequence[NodeTaint] = ()


@dataclass
class ClusterApi:
    provider: Provider
    """Kubernetes provider built from the kubeconfig."""
    ready: Mapping[str, pulumi.Output[str]]
    """Per node: resolves once the node is Ready."""
    labelled: dict[str, pulumi.Output[str]]
    """Per node: its name, once its labels and taints are set."""


def cluster_api(name: str, kubeconfig: pulumi.Input[str], nodes: Sequence[NodeMarks], ready: Mapping[str, pulumi.Output[str]],
                parent: pulumi.Resource | None = None, control_plane: SshTarget | None = None) -> ClusterApi:
    """The provider and each node's labels (and taints, set over SSH on `control_plane`: a node
    with taints needs one; components/cluster/node_meta.py says why)."""
    # A fixed identifier: the provider (and every Kubernetes object) stays in place when the
    # kubeconfig changes for the same cluster (another seed, a new address or SSH key); without
    # one, pulumi-kubernetes replaces itself and everything it manages (docs/upstream.md).
    provider = Provider(f"{name}-k8s", kubeconfig=kubeconfig, cluster_identifier=f"hybrid-ai-{name}",
                        opts=pulumi.ResourceOptions(parent=parent))
    # Before any placement label is set: only the program may set or change them (label_guard.py).
    guarded = protected_labels(name, parent, provider)
    labelled = {n.name: label_and_taint(name, parent, n.name, n.labels, n.taints, after(ready[n.name], guarded), provider, control_plane)
                for n in nodes}
    return ClusterApi(provider, ready, labelled)

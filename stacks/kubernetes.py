"""The Kubernetes layer of a stack alone, applied to a cluster that exists: the provider, each
node's labels and taints, and the workloads (everything `build_workloads` makes), with no host,
VPN or MicroK8s step and no post-deploy check over SSH.

This is the injection point for a kubeconfig until the whole program runs under the real engine:
`program(kubeconfig)` is a Pulumi program (for the automation API) that loads the stack's config
as `__main__` does and gives the provider that kubeconfig instead of the one MicroK8sCluster reads
off the control plane. Every node named in `hosts` must already be in the cluster; taints are
not applied here (they are set over SSH on the control plane)."""

from __future__ import annotations

import sys
from collections.abc import Callable

import pulumi

from components.cluster.api import NodeMarks, cluster_api
from components.cluster.node_meta import NodeTaint
from stacks.build import node_labels
from stacks.load import NAMESPACE, ConfigError, Stack, load
from stacks.workloads import Workloads, build_workloads


def build_kubernetes(stack: Stack, kubeconfig: pulumi.Input[str]) -> Workloads:
    cfg = stack.config
    tainted = [f"{NAMESPACE}:hosts[{i}].taints" for i, h in enumerate(cfg.hosts) if h.in_cluster and h.taints]
    if tainted:  # node_meta.py sets taints with kubectl over SSH on the control plane
        raise ConfigError([f"{key}: taints need the control plane over SSH; apply the whole program" for key in tainted])
    nodes = [NodeMarks(h.name, node_labels(cfg, h), [NodeTaint(t.key, t.value, t.effect) for t in h.taints])
             for h in cfg.hosts if h.in_cluster]
    ready = {n.name: pulumi.Output.from_input(n.name) for n in nodes}  # they have joined already
    api = cluster_api("cluster", pulumi.Output.secret(kubeconfig), nodes, ready)
    return build_workloads(stack, api)


def program(kubeconfig: str) -> Callable[[], None]:
    """The Kubernetes layer of the selected stack, on the cluster `kubeconfig` reaches."""
    def run() -> None:
        try:
            stack = load()
        except ConfigError as err:
            pulumi.log.error(str(err))
            sys.exit(1)
        try:
            pulumi.export("models", build_kubernetes(stack, kubeconfig).endpoints)
        except ConfigError as err:
            pulumi.log.error(str(err))
            sys.exit(1)
    return run

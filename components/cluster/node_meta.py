"""A node's labels and taints, set once it is Ready.

Labels by a server-side-apply NodePatch of `metadata.labels` only: labels are a map, so the
patch owns exactly its keys, and a key it stops sending is removed (a renamed label moves in one
`up`). Taints never go through it: `spec.taints` is an atomic list under server-side apply
(k8s.io/api core/v1 NodeSpec.Taints, `+listType=atomic`, at 1.32), so applying any list, even
`[]`, claims the whole list and conflicts with, or (forced) removes, the node lifecycle
controller's taints (not-ready, unreachable, unschedulable). The program's taints are added
one by one with `kubectl taint` on the control plane instead, and removed the same way; the
node's other taints stay as they are (docs/upstream.md).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
from pulumi_command import remote
from pulumi_kubernetes.core.v1 import NodePatch
from pulumi_kubernetes.meta.v1 import ObjectMetaPatchArgs
from pulumi_kubernetes.provider import Provider

from components.hosts.ssh import SshTarget, command_options
from components.kit import shell
from components.kit.outputs import after


@dataclass(frozen=True)
class NodeTaint:
    key: str
    value: str
    effect: str

    def spec(self) -> str:
        """`key=value:Effect`, as the taint scripts take it."""
        return f"{self.key}={self.value}:{self.effect}"


def label_and_taint(prefix: str, parent: pulumi.Resource | None, node: str, labels: Mapping[str, str], taints: Sequence[NodeTaint],
                    ready: pulumi.Output[str], provider: Provider, control_plane: SshTarget | None) -> pulumi.Output[str]:
    """`<prefix>-<node>-labels` (and `<prefix>-<node>-taints` when it has taints); the node's
    name, resolving once both are done. Taints need the control plane (over SSH)."""
    # The wait for the node rides on the label values, not the name: pulumi-kubernetes refuses a
    # patch whose name is unknown at preview, as it is while the node is being added (docs/upstream.md).
    patch = NodePatch(
        f"{prefix}-{node}-labels",
        metadata=ObjectMetaPatchArgs(name=node, labels={k: after(v, ready) for k, v in labels.items()}),
        opts=pulumi.ResourceOptions(parent=parent, provider=provider),
    ) if labels else None
    labelled = patch.id if patch is not None else ready  # no label: nothing to patch, nothing to wait for
    if not taints:
        return after(node, labelled)
    if control_plane is None or parent is None:
        raise ValueError(f"{node}: taints are set over SSH on the control plane, which the Kubernetes layer alone does not reach")
    params = {"NODE_NAME": node, "TAINTS": " ".join(t.spec() for t in taints)}
    target = control_plane.after(labelled)  # after the patch: an older one of ours may still own (and drop) the list
    tainted = remote.Command(
        f"{prefix}-{node}-taints",
        connection=target.connection,
        create=shell.remote_command("microk8s-taint.sh", params, sudo=target.sudo),
        delete=shell.remote_command("microk8s-untaint.sh", params, sudo=target.sudo),
        # Another set replaces the step: the old set is removed first (delete before replace),
        # then the new one added, so a taint dropped from the config leaves the node.
        triggers=[params["TAINTS"]],
        add_previous_output_in_env=False,
        opts=pulumi.ResourceOptions.merge(command_options(parent), pulumi.ResourceOptions(delete_before_replace=True)),
    )
    return after(node, labelled, tainted.stdout)
